"""The compliance queue over HTTP: only the compliance role (and admin) sees and decides it."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import Compliance, StoreDep, workbench
from app.review import service as review

router = APIRouter(prefix="/api/compliance", tags=["compliance"])


class ApproveBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1, description="The item version you reviewed: a stale version gets 409.")
    text: str | None = Field(default=None, max_length=10_000, description="Approve this edited text instead.")
    comment: str | None = Field(default=None, max_length=2_000)


class RejectBody(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: int = Field(ge=1)
    reason_code: str = Field(description=f"One of: {', '.join(review.REASON_CODES)}")
    comment: str | None = Field(default=None, max_length=2_000)


@router.get("/queue")
def queue(user: Compliance, factory: StoreDep, status: str | None = "pending") -> list[dict[str, Any]]:
    return review.queue(factory, None if status in (None, "", "all") else status)


@router.post("/{item_id}/approve")
def approve(item_id: str, body: ApproveBody, user: Compliance, factory: StoreDep,
            bench: Annotated[Any, Depends(workbench)]) -> dict[str, Any]:
    item = review.approve(factory, bench.reviewer, bench.profile, item_id, version=body.version, by=user.name,
                          now=datetime.now(timezone.utc), edited_body=body.text, comment=body.comment)
    return {"id": item.id, "status": item.status, "version": item.version, "decided_by": item.decided_by}


@router.post("/{item_id}/reject")
def reject(item_id: str, body: RejectBody, user: Compliance, factory: StoreDep) -> dict[str, Any]:
    item = review.reject(factory, item_id, version=body.version, by=user.name, reason_code=body.reason_code,
                         comment=body.comment, now=datetime.now(timezone.utc))
    return {"id": item.id, "status": item.status, "version": item.version, "decided_by": item.decided_by,
            "reason_code": item.reason_code}
