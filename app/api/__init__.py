"""HTTP: FastAPI routers that translate requests into service calls and back; no logic lives here."""
