"""Cards over HTTP: the rep's inbox and the actions on a card. Every action needs an Idempotency-Key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Header
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CurrentUser, StoreDep, workbench
from app.cards import service as cards
from app.domain import Channel, Outcome, UTCDatetime

router = APIRouter(prefix="/api/cards", tags=["cards"])
Key = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=128,
                            description="Any unique string per action; a retry with the same key is not recorded twice.")]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", use_enum_values=True)


class AdoptBody(Strict):
    text: str | None = Field(default=None, max_length=10_000, description="The edited script, if the rep changed it.")


class RejectBody(Strict):
    reason: str = Field(description=f"One of: {', '.join(cards.REJECT_REASONS)}")
    note: str | None = Field(default=None, max_length=2_000)


class SendBody(Strict):
    channel: Channel | None = None
    at: UTCDatetime | None = Field(default=None, description="When it was actually sent (default: now).")


class OutcomeBody(Strict):
    outcome: Outcome
    value: float | None = Field(default=None, ge=0)


@router.get("")
def list_cards(user: CurrentUser, factory: StoreDep, rep: str | None = None, status: str | None = "open",
               limit: int = 50) -> list[dict[str, Any]]:
    """Cards by priority. Reps see their own and their team queue's; others see everyone's (filter with `rep`)."""
    return cards.list_cards(factory, user, rep=rep, status=status or None, limit=min(max(limit, 1), 500))


@router.get("/{card_id}")
def get_card(card_id: str, user: CurrentUser, factory: StoreDep) -> dict[str, Any]:
    return cards.get_card(factory, user, card_id)


Bench = Annotated[Any, Depends(workbench)]


@router.post("/{card_id}/adopt")
def adopt(card_id: str, user: CurrentUser, key: Key, bench: Bench, body: AdoptBody | None = None) -> dict[str, Any]:
    """Adopt the draft (one tap), or adopt an edited text: the edit is checked again and stored as a diff."""
    return bench.act(user, card_id, "adopt", key=key, payload=(body or AdoptBody()).model_dump(exclude_none=True))


@router.post("/{card_id}/reject")
def reject(card_id: str, body: RejectBody, user: CurrentUser, key: Key, bench: Bench) -> dict[str, Any]:
    return bench.act(user, card_id, "reject", key=key, payload=body.model_dump())


@router.post("/{card_id}/send")
def send(card_id: str, user: CurrentUser, key: Key, bench: Bench, body: SendBody | None = None) -> dict[str, Any]:
    """Mark sent (executed). Refused with 409 while the draft waits for compliance approval."""
    return bench.act(user, card_id, "send", key=key, payload=(body or SendBody()).model_dump(exclude_none=True))


@router.post("/{card_id}/outcome")
def outcome(card_id: str, body: OutcomeBody, user: CurrentUser, key: Key, bench: Bench) -> dict[str, Any]:
    return bench.act(user, card_id, "outcome", key=key, payload=body.model_dump())
