"""The content team's pages: the library and one template with its usage and results (signed in only)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from app.http.deps import ServicesDep
from app.library import service
from app.web.render import PageUser, render, to_login

router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/library", response_class=HTMLResponse)
def library_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    if user is None:
        return to_login()
    with services.read() as session:
        templates = service.list_templates(session=session)
    return render(request, services, "library.html", user, templates=templates)


@router.get("/library/{template_id}", response_class=HTMLResponse)
def template_page(request: Request, template_id: str, user: PageUser, services: ServicesDep) -> Response:
    if user is None:
        return to_login()
    with services.read() as session:
        info = service.show(session=session, template_id=template_id)
    return render(request, services, "template.html", user, t=info.model_dump(mode="json"))
