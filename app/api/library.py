"""Template library over HTTP, read side: list, show with usage and results, search.

Changing templates over HTTP (edit, approve, retire) waits for users and roles: only the content
team may edit and only an authorised reviewer may approve. Until then those stay in the CLI.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query

from app.api.deps import IndexDep, StoreDep
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
