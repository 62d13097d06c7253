"""The FastAPI application: the API (OpenAPI docs at /docs) and the pages, errors as clear 4xx JSON."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from app.api import cards, compliance, events, library, metrics
from app.cards import service as card_service
from app.config import Settings, get_settings
from app.review import service as review
from app.web import library as library_pages
from app.web import pages

MAX_BODY_BYTES = 256 * 1024
# Domain errors -> HTTP status; the message (which names the field) becomes `detail`.
ERRORS: dict[type[Exception], int] = {
    card_service.CardError: 422, card_service.NotFound: 404, card_service.Forbidden: 403, card_service.Conflict: 409,
    review.Conflict: 409, review.NotReleasable: 409, review.ReviewError: 422,
}


def create_app(settings: Settings | None = None, *, worker: bool = False) -> FastAPI:
    """The app; `worker=True` (the served product) also runs the background rounds: triggers, drafts, SLA."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        if worker:
            from app.api.deps import _store, get_index_for
            from app.api.workbench import Workbench

            app.state.workbench = Workbench(app.state.settings, _store(app.state.settings.resolved_database_url),
                                            get_index_for(app))
            app.state.workbench.start()
        yield
        if getattr(app.state, "workbench", None) is not None:
            app.state.workbench.stop()

    app = FastAPI(title="outreach", version="0.1.0", lifespan=lifespan,
                  description="Who to contact, when, on which channel and what to say. Sign in with "
                              "`Authorization: Bearer TOKEN` (`outreach users token NAME`).")
    app.state.settings = settings or get_settings()
    app.state.template_index = None
    app.state.workbench = None
    for router in (library.router, cards.router, compliance.router, events.router, metrics.router,
                   library_pages.router, pages.router):
        app.include_router(router)

    @app.middleware("http")
    async def limit_body(request: Request, call_next: Any) -> Any:
        length = request.headers.get("content-length")
        if length and (not length.isdigit() or int(length) > MAX_BODY_BYTES):
            return JSONResponse({"detail": f"request body larger than {MAX_BODY_BYTES // 1024} KB"}, status_code=413)
        return await call_next(request)

    for error, status in ERRORS.items():
        def handler(request: Request, exc: Exception, status: int = status) -> JSONResponse:
            return JSONResponse({"detail": str(exc)}, status_code=status)
        app.add_exception_handler(error, handler)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"] if p not in ("body",)) or "body"
        return JSONResponse({"detail": f"{where}: {first['msg']}", "errors": [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()[:10]]},
            status_code=422)

    return app
