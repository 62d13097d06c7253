"""Errors become clear 4xx JSON once, here: `detail` names the field; never a stack trace."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.errors import OutreachError


# Parts of a validation error's location that are not fields: the body itself, and the tag of a body that comes
# in more than one shape (POST /api/events: a customer event or a service event).
BODY_PARTS = frozenset({"body", "customer_event", "service_event"})


def install(app: FastAPI) -> None:
    @app.exception_handler(OutreachError)
    def outreach_error(request: Request, exc: OutreachError) -> JSONResponse:
        return JSONResponse({"detail": str(exc), "field": exc.field}, status_code=exc.status)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p not in BODY_PARTS) or "body"
        return JSONResponse({"detail": f"{where}: {first['msg']}", "field": where, "errors": [
            {"field": ".".join(str(p) for p in e["loc"] if p not in BODY_PARTS), "message": e["msg"]} for e in exc.errors()[:10]]},
            status_code=422)
