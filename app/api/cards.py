"""Cards over HTTP: the rep's inbox and the actions on a card. Every action needs an Idempotency-Key."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from app.api.schemas import AdoptBody, OutcomeBody, RejectBody, SendBody
from app.cards import service as cards
from app.cards.service import CardStatus, CardView
from app.http.deps import CurrentUser, IdempotencyKey, ServicesDep

router = APIRouter(prefix="/api/cards", tags=["cards"])


@router.get("")
def list_cards(user: CurrentUser, services: ServicesDep, rep: Annotated[str | None, Query(max_length=64)] = None,
               status: CardStatus | None = CardStatus.OPEN,
               limit: Annotated[int, Query(ge=1, le=500)] = 50) -> list[CardView]:
    """Cards by priority. Reps see their own and their team queue's; admin and compliance anyone's."""
    return services.query(lambda s: cards.list_cards(session=s, user=user, rep=rep, status=status, limit=limit))


@router.get("/{card_id}")
def get_card(card_id: str, user: CurrentUser, services: ServicesDep) -> CardView:
    return services.query(lambda s: cards.get_card(session=s, user=user, card_id=card_id))


@router.post("/{card_id}/adopt")
def adopt(card_id: str, user: CurrentUser, key: IdempotencyKey, services: ServicesDep,
          body: AdoptBody | None = None) -> CardView:
    """Adopt the draft (one tap), or adopt an edited text: the edit is checked by the guardrails first (blocked
    is refused; needing approval goes to the compliance queue) and becomes a new version of the draft."""
    now = services.now()
    if body is None or body.text is None:
        return services.write(lambda s: cards.adopt(session=s, user=user, card_id=card_id, key=key, now=now))
    with services.read() as session:
        edit = cards.prepare_edit(session=session, user=user, card_id=card_id, text=body.text,
                                  reviewer=services.reviewer, profile=services.profile, now=now)
    return services.write(lambda s: cards.adopt_edited(session=s, user=user, edit=edit, key=key, now=now))


@router.post("/{card_id}/reject")
def reject(card_id: str, body: RejectBody, user: CurrentUser, key: IdempotencyKey, services: ServicesDep) -> CardView:
    now = services.now()
    return services.write(lambda s: cards.reject(session=s, user=user, card_id=card_id, key=key, reason=body.reason,
                                                 note=body.note, now=now,
                                                 daily_cap=services.settings.card_daily_cap))


@router.post("/{card_id}/send")
def send(card_id: str, user: CurrentUser, key: IdempotencyKey, services: ServicesDep,
         body: SendBody | None = None) -> CardView:
    """Mark sent: releases exactly the text the card shows. Refused with 409 unless it is ready or approved."""
    body, now = body or SendBody(), services.now()
    return services.write(lambda s: cards.mark_sent(session=s, user=user, card_id=card_id, key=key,
                                                    channel=body.channel, at=body.at, now=now,
                                                    daily_cap=services.settings.card_daily_cap))


@router.post("/{card_id}/outcome")
def outcome(card_id: str, body: OutcomeBody, user: CurrentUser, key: IdempotencyKey, services: ServicesDep) -> CardView:
    """What came of it. A different second outcome is 409 unless `correction` is true (audited)."""
    now = services.now()
    return services.write(lambda s: cards.record_outcome(session=s, user=user, card_id=card_id, key=key,
                                                         outcome=body.outcome, value=body.value, now=now,
                                                         correction=body.correction))


