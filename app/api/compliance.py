"""The compliance queue over HTTP: only the compliance role (and admin) sees and decides it."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from app.api.schemas import ApproveBody, ComplianceRejectBody
from app.http.deps import Compliance, ServicesDep
from app.review import service as review
from app.review.service import QueueDecision, QueueItem

router = APIRouter(prefix="/api/compliance", tags=["compliance"])


@router.get("/queue")
def queue(user: Compliance, services: ServicesDep,
          status: Annotated[Literal["pending", "approved", "rejected", "withdrawn", "all"], Query()] = "pending"
          ) -> list[QueueItem]:
    return services.query(lambda s: review.queue(session=s, status=None if status == "all" else status))


@router.post("/{item_id}/approve")
def approve(item_id: str, body: ApproveBody, user: Compliance, services: ServicesDep) -> QueueDecision:
    """Approve the item's text, or an edited text (`text`): the edit is checked again and becomes a new
    version, which is then exactly what the rep's card shows and sends."""
    now = services.now()
    with services.read() as session:
        edit = review.prepare_approval(session=session, reviewer=services.reviewer, profile=services.profile,
                                       item_id=item_id, edited_body=body.text, now=now)
    return services.write(lambda s: review.approve(session=s, item_id=item_id, version=body.version, by=user.name,
                                                   now=now, edit=edit, comment=body.comment))


@router.post("/{item_id}/reject")
def reject(item_id: str, body: ComplianceRejectBody, user: Compliance, services: ServicesDep) -> QueueDecision:
    now = services.now()
    return services.write(lambda s: review.reject(session=s, item_id=item_id, version=body.version, by=user.name,
                                                  reason_code=body.reason_code, comment=body.comment, now=now))
