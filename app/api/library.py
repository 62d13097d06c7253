"""Template library over HTTP: list, show with usage and results, search (for anyone signed in who works
with scripts); edit and approve (the content team only; the author of a version cannot approve it)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.schemas import MAX_INT, TemplateApproved, TemplateEdit, TemplateEdited
from app.domain import Channel
from app.http.deps import Content, LibraryReader, ServicesDep
from app.library import service
from app.library.retrieval import RetrievalRequest, RetrievedTemplate, retrieve
from app.library.service import TemplateDetail, TemplateSummary
from app.library.templates import Stage, TemplateStatus

router = APIRouter(prefix="/api/templates", tags=["template library"])


@router.get("")
def list_templates(user: LibraryReader, services: ServicesDep, status: TemplateStatus | None = None
                   ) -> list[TemplateSummary]:
    """Every template with its status, latest and live version."""
    return services.query(lambda s: service.list_templates(session=s, status=status))


@router.get("/search")
def search_templates(
    user: LibraryReader,
    services: ServicesDep,
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
    return services.query(lambda s: retrieve(session=s, index=services.index, request=request))


@router.get("/{template_id}")
def show_template(template_id: str, user: LibraryReader, services: ServicesDep) -> TemplateDetail:
    """One template: current text, versions, history of changes, usage and results by segment."""
    return services.query(lambda s: service.show(session=s, template_id=template_id))


@router.put("/{template_id}")
def edit_template(template_id: str, changes: TemplateEdit, user: Content, services: ServicesDep) -> TemplateEdited:
    """A new draft version (content team only), checked as drafts render it; the approved version stays live
    until someone else approves this one."""
    now = services.now()
    vocabulary = service.library_vocabulary(services.settings.library_dir)
    version = services.write(lambda s: service.edit(session=s, template_id=template_id,
                                                    changes=changes.model_dump(exclude_none=True), actor=user.name,
                                                    now=now, vocabulary=vocabulary))
    return TemplateEdited(id=template_id, version=version, status="draft")


@router.post("/{template_id}/approve")
def approve_template(template_id: str, user: Content, services: ServicesDep,
                     version: Annotated[int | None, Query(ge=1, le=MAX_INT)] = None) -> TemplateApproved:
    """Make a version live (content team only, not its own author) and update the search index."""
    now = services.now()
    number = services.write(lambda s: service.approve(session=s, template_id=template_id, actor=user.name, now=now,
                                                      version=version))
    with services.read() as session:
        services.index.sync(service.live_versions(session=session))
    return TemplateApproved(id=template_id, approved_version=number)
