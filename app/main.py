"""The served product: the API (OpenAPI docs at /docs) and the pages in one FastAPI application, built on
one `Services`, with errors as clear 4xx JSON and a request-size limit on the bytes actually read."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api import cards, changes, compliance, events, library, metrics
from app.http import errors
from app.http.limits import BodyLimit
from app.services import Services
from app.web import library as library_pages
from app.web import pages


def create_app(services: Services, *, worker: bool = False) -> FastAPI:
    """The app over `services`; `worker=True` (the served product) also runs the background rounds (triggers,
    drafts, SLA). Shutting it down (Ctrl-C, SIGTERM) stops the worker and the local model server it started."""

    @asynccontextmanager
    async def lifespan(app: FastAPI):  # noqa: ANN202
        running = None
        if worker:
            from app.worker import Worker

            running = Worker(services)
            running.start()
        yield
        if running is not None:
            running.stop()
        services.close()

    app = FastAPI(title="outreach", version="0.1.0", lifespan=lifespan,
                  description="Who to contact, when, on which channel and what to say. Sign in with "
                              "`Authorization: Bearer TOKEN` (`outreach users token NAME`).")
    app.state.services = services
    for router in (library.router, cards.router, changes.router, compliance.router, events.router, metrics.router,
                   library_pages.router, pages.router):
        app.include_router(router)
    errors.install(app)
    app.add_middleware(BodyLimit)
    return app


def served_app() -> FastAPI:
    """One served process for `uvicorn --factory` (`outreach serve --workers N` starts N of them): its own
    composition root from the environment's settings, and its own background worker on the shared job queue."""
    from app.services import build

    services = build()
    return create_app(services, worker=services.settings.serve_background_work)
