"""The services the HTTP app shares: drafter, reviewer, profile, and the background worker that drafts
cards, fires triggers and sweeps SLAs."""

from __future__ import annotations

import logging
import threading
from datetime import datetime, timezone
from functools import cached_property
from typing import Any

from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings

log = logging.getLogger(__name__)


class Workbench:
    def __init__(self, settings: Settings, factory: sessionmaker[Session], index: Any) -> None:
        self.settings, self.factory, self.index = settings, factory, index
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    @cached_property
    def drafter(self) -> Any:
        from app.drafting.service import Drafter

        return Drafter(self.settings)

    @cached_property
    def reviewer(self) -> Any:
        from app.library.index import default_embedder
        from app.review.checks import Reviewer

        return Reviewer.from_folder(self.settings.guardrails_dir, default_embedder(self.settings.embedding_model))

    @property
    def profile(self) -> Any:
        return self.drafter.profile

    def act(self, user: Any, card_id: str, kind: str, *, key: str, payload: dict[str, Any]) -> dict[str, Any]:
        """A card action from the API or a page; an edited script is reviewed like any draft."""
        from app.cards import service as cards

        edited = kind == "adopt" and payload.get("text") is not None
        return cards.act(self.factory, user, card_id, kind, key=key, now=datetime.now(timezone.utc), payload=payload,
                         reviewer=self.reviewer if edited else None, profile=self.profile if edited else None,
                         daily_cap=self.settings.card_daily_cap)

    def decide(self, customer_id: str) -> Any:
        from app.models.reasons import load_reason_table
        from app.models.scoring import decide_one
        from app.policy.rules import load_policy

        s = self.settings
        return decide_one(self.factory, customer_id, now=datetime.now(timezone.utc),
                          policy=load_policy(s.contact_policy_file), reasons=load_reason_table(s.reason_templates_file),
                          challenger_share=s.challenger_share)

    def tick(self, *, draft_limit: int = 5) -> dict[str, Any]:
        """One round of background work: triggers first (they are what reps wait for), then drafts, then SLA."""
        from app.cards import service as cards

        with self._lock:
            now = datetime.now(timezone.utc)
            fired = cards.process_events(self.factory, now=now, decide=self.decide, sla_hours=self.settings.card_sla_hours)
            drafted = cards.draft_pending(self.factory, drafter=self.drafter, reviewer=self.reviewer, index=self.index,
                                          now=now, limit=draft_limit)
            sla = cards.sweep_sla(self.factory, now=now, sla_hours=self.settings.card_sla_hours)
            return {"events": fired, "drafted": drafted, "sla": sla}

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="outreach-worker", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while not self._stop.wait(self.settings.worker_interval_s):
            try:
                self.tick()
            except Exception:  # noqa: BLE001 - the worker logs and keeps going; requests are unaffected
                log.exception("background work failed; retrying next round")
