"""The FastAPI application: routers for the API and the pages, OpenAPI docs at /docs."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.responses import RedirectResponse

from app.api import library
from app.config import Settings, get_settings
from app.web import library as library_pages


def create_app(settings: Settings | None = None) -> FastAPI:
    app = FastAPI(title="outreach", version="0.1.0",
                  description="Who to contact, when, on which channel and what to say.")
    app.state.settings = settings or get_settings()
    app.state.template_index = None
    app.include_router(library.router)
    app.include_router(library_pages.router)

    @app.get("/", include_in_schema=False)
    def home() -> RedirectResponse:
        return RedirectResponse("/library")

    return app
