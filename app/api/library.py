"""Template library over HTTP: list, show with usage and results, search (read side, open); edit and
approve (the content team only)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import Content, IndexDep, StoreDep
from app.domain import Channel
from app.library import service
from app.library.retrieval import RetrievalRequest, RetrievedTemplate, retrieve
from app.library.templates import Stage, TemplateStatus

router = APIRouter(prefix="/api/templates", tags=["template library"])


@router.get("")
def list_templates(factory: StoreDep, status: TemplateStatus | None = None) -> list[dict[str, Any]]:
    """Every template with its status, latest and live version."""
    return service.list_templates(factory, status)


@router.get("/search")
def search_templates(
    factory: StoreDep,
    index: IndexDep,
    text: Annotated[str, Query(max_length=2000)] = "",
    channel: Channel | None = None,
    product: Annotated[str | None, Query(max_length=64)] = None,
    stage: Stage | None = None,
    intent: Annotated[list[str] | None, Query(max_length=10)] = None,
    segment: Annotated[str | None, Query(max_length=64)] = None,
    k: Annotated[int, Query(ge=1, le=50)] = 5,
) -> list[RetrievedTemplate]:
    """Approved templates ranked by meaning and measured results, each with why it was chosen."""
    request = RetrievalRequest(text=text, channel=channel, product=product, stage=stage, intents=intent or [],
                               segment=segment, k=k)
    return retrieve(factory, index, request)


@router.get("/{template_id}")
def show_template(template_id: str, factory: StoreDep) -> dict[str, Any]:
    """One template: current text, versions, history of changes, usage and results by segment."""
    try:
        return service.show(factory, template_id)
    except service.LibraryError as exc:
        raise HTTPException(status_code=404, detail=str(exc)) from None


class TemplateEdit(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str | None = Field(default=None, max_length=200)
    body: str | None = Field(default=None, max_length=10_000)
    disclosures: list[str] | None = None
    sensitive: bool | None = None
    intents: list[str] | None = None


@router.put("/{template_id}")
def edit_template(template_id: str, changes: TemplateEdit, user: Content, factory: StoreDep) -> dict[str, Any]:
    """A new draft version (content team only); the approved version stays live until this one is approved."""
    try:
        version = service.edit(factory, template_id, changes.model_dump(exclude_none=True), actor=user.name,
                               now=datetime.now(timezone.utc))
    except service.LibraryError as exc:
        raise HTTPException(status_code=404 if "no template" in str(exc) else 422, detail=str(exc)) from None
    return {"id": template_id, "version": version, "status": "draft"}


@router.post("/{template_id}/approve")
def approve_template(template_id: str, user: Content, factory: StoreDep, index: IndexDep,
                     version: int | None = None) -> dict[str, Any]:
    """Make a version live (content team only) and update the search index."""
    try:
        number = service.approve(factory, template_id, actor=user.name, now=datetime.now(timezone.utc), version=version)
    except service.LibraryError as exc:
        raise HTTPException(status_code=404 if "no template" in str(exc) else 409, detail=str(exc)) from None
    index.sync(service.live_versions(factory))
    return {"id": template_id, "approved_version": number}
