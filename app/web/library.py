"""The content team's pages: the library and one template with its usage and results."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from app.api.deps import StoreDep
from app.library import service

pages = Jinja2Templates(directory=str(Path(__file__).parent / "templates"))
router = APIRouter(tags=["pages"], include_in_schema=False)


@router.get("/library", response_class=HTMLResponse)
def library_page(request: Request, factory: StoreDep) -> HTMLResponse:
    return pages.TemplateResponse(request, "library.html", {"templates": service.list_templates(factory)})


@router.get("/library/{template_id}", response_class=HTMLResponse)
def template_page(request: Request, template_id: str, factory: StoreDep) -> HTMLResponse:
    try:
        info = service.show(factory, template_id)
    except service.LibraryError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None
    return pages.TemplateResponse(request, "template.html", {"t": info})
