"""A few weeks of the product in use, for the demo: reps work their inboxes, customers answer as the planted
truth says, compliance decides its queue, and a retrain puts a challenger on the live A/B split.

Everything goes through the services a person's action goes through (the same units of work, release gate,
audit and feedback): this module only plays the people. It is seeded, so the same seed and data give the same
month. Drafts come from the approved templates (the drafter's own fallback path, with the model endpoint
switched off): a month of drafts from the local model would take hours on a laptop, and the month's
purpose is the learning loop, not the wording.

The people, in numbers a team lead would recognise:
- each rep's inbox gets `per_day` new cards a day (2 by default) and the rep works it through each morning:
  adopts most (their own habit, 55-90 %), edits some (a friendly line, now and then an offer that compliance
  must see), rejects the rest with a reason;
- customers answer with the planted probability for their segment, the channel and the local hour it was sent;
  reps record the outcome a day or two later, and forget one in ten;
- compliance decides its queue at the end of each day: most drafts approved, most unapproved discounts
  rejected, with a reason code.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
import time
from datetime import datetime, timedelta, timezone
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
from pydantic import BaseModel
from sqlalchemy import select

from app.cards import service as cards
from app.cards.service import CardStatus
from app.clock import FixedClock
from app.data.synthetic import true_response_rate
from app.data.tables import Customer
from app.errors import OutreachError
from app.models import registry
from app.models.retrain import retrain
from app.models.scoring import score_all
from app.review import service as review
from app.services import Services
from app.users import service as users
from app.users.tables import User

REPS = [(f"rep-{i:02d}", f"team-{'abcd'[(i - 1) // 5]}") for i in range(1, 21)]  # the synthetic history's owners
COMPLIANCE_USER, DS_USER = "sim-compliance", "sim-ds"
REJECT_WEIGHTS = {"not_relevant": 0.3, "bad_timing": 0.25, "already_in_touch": 0.2, "wrong_channel": 0.1,
                  "poor_script": 0.1, "other": 0.05}
FRIENDLY_LINES = ["Happy to walk you through it on a short call this week.", "Let me know which day suits you best.",
                  "I can also send a short summary you can share with your team."]
OFFER_LINE = "If you sign up this month I can offer you 20% off the first year."  # compliance must see this
POSITIVE = (("replied", 0.5), ("meeting", 0.3), ("converted", 0.2))
COMPLIANCE_REJECT_CODES = ["prohibited_claim", "prohibited_claim", "tone", "other"]
SENDABLE = ("ready", "template only", "approved")  # what the release gate lets out
# Each simulated week explains (and offers) only its best customers by confidence: twice what the reps can
# work in a week, at a fraction of the cost of explaining everyone.
WEEKS_OF_WORK_EXPLAINED = 2


class SimulationSummary(BaseModel):
    weeks: int
    cards_worked: int = 0
    adopted: int = 0
    edited: int = 0
    rejected: int = 0
    sent: int = 0
    outcomes: int = 0
    converted: int = 0
    approved: int = 0
    compliance_rejected: int = 0
    scoring_runs: int = 0
    challenger: str | None = None
    seconds: float = 0.0

    def line(self) -> str:
        challenger = f"; retrained, {self.challenger} on the live A/B split" if self.challenger else ""
        return (f"simulated {self.weeks} weeks of use: {self.cards_worked:,} cards worked, {self.adopted:,} adopted "
                f"({self.edited} edited), {self.rejected:,} rejected with a reason, {self.sent:,} sent, "
                f"{self.outcomes:,} outcomes ({self.converted} converted); compliance approved {self.approved} and "
                f"rejected {self.compliance_rejected}{challenger} ({self.seconds:.0f} s)")


@dataclass
class _Pending:
    """What the simulated people will do on a later day."""

    outcomes: list[tuple[datetime, str, str, str, float | None]] = field(default_factory=list)  # due, rep, card, ...
    to_send: set[tuple[str, str, str]] = field(default_factory=set)  # (rep user, customer, card) adopted, awaiting approval


def _working_days(start: datetime, weeks: int) -> list[datetime]:
    days = [start + timedelta(days=d) for d in range(weeks * 7)]
    return [d for d in days if d.weekday() < 5]


def _ensure_people(services: Services, now: datetime) -> None:
    with services.unit_of_work() as session:
        for rep_id, team in REPS:
            if session.get(User, f"sim-{rep_id}") is None:
                users.add(session=session, name=f"sim-{rep_id}", role="rep", now=now, rep_id=rep_id, team=team, by="demo")
        for name, role in ((COMPLIANCE_USER, "compliance"), (DS_USER, "data_scientist")):
            if session.get(User, name) is None:
                users.add(session=session, name=name, role=role, now=now, by="demo")


def simulated_services(services: Services, start: datetime) -> Services:
    """The same store, index and guardrails, a clock the simulation walks, and no model endpoint (template drafts)."""
    settings = services.settings.model_copy(update={"llm_base_url": "http://127.0.0.1:9/v1", "llm_model": "off",
                                                    "llm_max_retries": 0, "llm_timeout_s": 1.0})
    return Services(settings, clock=FixedClock(start), store=services.store, reviewer=services.reviewer,
                    index=services.index, embedder=services.embedder)


def simulate(services: Services, *, start: datetime, weeks: int, seed: int, per_day: int = 2,
             report: Callable[[str], None] = lambda _: None) -> SimulationSummary:
    """Play `weeks` of use from `start` (a time in the past; the store's history should end there and a
    champion be trained on it). Returns what happened, in counts."""
    from app.worker import draft_card

    began = time.perf_counter()
    rng = np.random.default_rng(seed)
    sim = simulated_services(services, start)
    clock: FixedClock = sim.clock  # type: ignore[assignment]
    config = sim.settings
    _ensure_people(sim, start)
    habits = {rep: (rng.uniform(0.55, 0.9), rng.uniform(0.1, 0.3)) for rep, _ in REPS}  # adopt, edit
    with sim.read() as session:
        people = session.execute(select(Customer.id, Customer.segment, Customer.timezone)).all()
    segments, zones = {c.id: c.segment for c in people}, {c.id: c.timezone for c in people}
    explain_top = min(1.0, WEEKS_OF_WORK_EXPLAINED * len(REPS) * per_day * 5 / max(len(people), 1))
    summary, pending = SimulationSummary(weeks=weeks), _Pending()

    def act(name: str, action: Callable[[Any, User], Any]) -> Any:
        """One person's action: one unit of work, as the API would run it; a refusal is what a person would
        see (a 409 or 422), so it is counted out, not raised."""
        try:
            with sim.unit_of_work() as session:
                return action(session, session.get(User, name))
        except OutreachError:
            return None

    def send(name: str, card_id: str, channel: str | None, customer_id: str) -> None:
        now = clock.now()
        done = act(name, lambda s, u: cards.mark_sent(session=s, user=u, card_id=card_id, key=f"sim-send-{card_id}",
                                                       channel=None, at=None, now=now, daily_cap=per_day))
        if done is None:
            return
        summary.sent += 1
        local = now.astimezone(ZoneInfo(zones.get(customer_id) or "UTC"))
        rate = true_response_rate(segments.get(customer_id) or "smb_owner", done.executed_channel or channel or "email",
                                  local.weekday() * 24 + local.hour)
        if rng.random() < 0.1:
            return  # the rep never records what happened: the feedback alert's business
        if rng.random() < rate:
            outcome = str(rng.choice([o for o, _ in POSITIVE], p=[p for _, p in POSITIVE]))
        else:
            outcome = "no_answer" if rng.random() < 0.7 else "declined"
        value = round(float(rng.lognormal(np.log(2000), 0.6)), 2) if outcome == "converted" else None
        pending.outcomes.append((now + timedelta(days=int(rng.integers(1, 3))), name, card_id, outcome, value))

    def record_outcomes(until: datetime) -> None:
        """The outcomes reps learnt of by `until`, recorded as they come in."""
        for due, name, card_id, outcome, value in [o for o in pending.outcomes if o[0] <= until]:
            pending.outcomes.remove((due, name, card_id, outcome, value))
            if act(name, lambda s, u: cards.record_outcome(session=s, user=u, card_id=card_id, key=f"sim-out-{card_id}",
                                                           outcome=outcome, value=value, now=max(due, clock.now()))):
                summary.outcomes += 1
                summary.converted += outcome == "converted"

    week_start = None
    for day in _working_days(start, weeks):
        morning = day.replace(hour=9, minute=0, second=0, microsecond=0)
        if week_start is None or morning - week_start >= timedelta(days=7):
            week_start = morning
            if summary.scoring_runs == 1:  # after a week of outcomes: retrain, and the new version goes live as challenger
                report("retraining on the first simulated week")
                clock.at = morning - timedelta(hours=2)
                result = retrain(sim.store, models_dir=config.models_dir, now=clock.now(), actor=DS_USER, seed=seed,
                                 objectives_file=config.objectives_file)
                with sim.read() as session:
                    current = registry.challenger(session=session)
                if current is None or current.id != result.version:
                    # Not better offline: the data scientist still tries it live, as `outreach models challenger` does.
                    with sim.unit_of_work() as session:
                        registry.set_challenger(session=session, version_id=result.version, now=clock.now(), actor=DS_USER)
                summary.challenger = result.version
            clock.at = morning - timedelta(hours=1)
            report(f"simulated week of {morning:%Y-%m-%d}: scoring")
            run = score_all(sim.store, now=clock.now(), policy=sim.contact_policy, reasons=sim.reason_table,
                            challenger_share=config.challenger_share, chunk_size=config.score_chunk_size,
                            objectives=sim.objectives, explain_top=explain_top)
            summary.scoring_runs += 1
            with sim.unit_of_work() as session:
                cards.build_cards(session=session, run_id=run.run_id, now=clock.now(), daily_cap=per_day,
                                  sla_hours=config.card_sla_hours)
        clock.at = morning
        record_outcomes(morning)
        for name, customer_id, card_id in sorted(pending.to_send):  # approved since: send it now
            with sim.read() as session:
                view = cards.get_card(session=session, user=session.get(User, name), card_id=card_id)
            if view.status == CardStatus.ADOPTED and view.draft_status in SENDABLE:
                pending.to_send.discard((name, customer_id, card_id))
                send(name, card_id, view.channel, customer_id)
            elif view.status != CardStatus.ADOPTED or view.draft_status in ("rejected", "blocked"):
                pending.to_send.discard((name, customer_id, card_id))
        for rep_id, _ in REPS:
            name = f"sim-{rep_id}"
            adopt_rate, edit_rate = habits[rep_id]
            clock.at = morning + timedelta(minutes=int(rng.integers(0, 240)))
            with sim.read() as session:
                mine = [c for c in cards.list_cards(session=session, user=session.get(User, name), limit=50)
                        if c.rep_id == rep_id]
            # The whole inbox as it stood this morning (what a send or a rejection refills waits for tomorrow),
            # best first, ties by customer (card ids are random): the same seed works the same cards.
            inbox = sorted(mine, key=lambda c: (-c.priority, c.customer.id))
            for card in inbox:
                summary.cards_worked += 1
                clock.at += timedelta(minutes=int(rng.integers(3, 30)))
                now = clock.now()
                if rng.random() > adopt_rate:
                    reason = str(rng.choice(list(REJECT_WEIGHTS), p=list(REJECT_WEIGHTS.values())))
                    if act(name, lambda s, u: cards.reject(session=s, user=u, card_id=card.id, key=f"sim-rej-{card.id}",
                                                           reason=reason, note=None, now=now, daily_cap=per_day)):
                        summary.rejected += 1
                    continue
                draft_card(sim, card.id)
                adopted = None
                if rng.random() < edit_rate:
                    with sim.read() as session:
                        head = cards.get_card(session=session, user=session.get(User, name), card_id=card.id)
                    line = OFFER_LINE if rng.random() < 0.5 else str(rng.choice(FRIENDLY_LINES))
                    if head.draft is not None:
                        try:
                            with sim.read() as session:
                                edit = cards.prepare_edit(session=session, user=session.get(User, name), card_id=card.id,
                                                          text=f"{head.draft.body.rstrip()}\n\n{line}",
                                                          reviewer=sim.reviewer, profile=sim.profile, now=now)
                            adopted = act(name, lambda s, u: cards.adopt_edited(session=s, user=u, edit=edit,
                                                                                key=f"sim-edit-{card.id}", now=now))
                            summary.edited += adopted is not None
                        except OutreachError:
                            adopted = None  # the guardrails refused the edit: the rep takes the draft as it was
                if adopted is None:
                    adopted = act(name, lambda s, u: cards.adopt(session=s, user=u, card_id=card.id,
                                                                 key=f"sim-adopt-{card.id}", now=now))
                if adopted is None:
                    continue
                summary.adopted += 1
                if adopted.draft_status in SENDABLE:
                    send(name, card.id, adopted.channel, adopted.customer.id)
                else:
                    pending.to_send.add((name, card.customer.id, card.id))
        clock.at = day.replace(hour=17, minute=0, second=0, microsecond=0)
        with sim.read() as session:
            queue = review.queue(session=session)
        for item in sorted(queue, key=lambda i: (i.created_at, i.customer_id)):
            now = clock.now()
            # An unapproved discount is what compliance is there to stop; most other drafts pass.
            if rng.random() < (0.25 if OFFER_LINE in item.body else 0.9):
                done = act(COMPLIANCE_USER, lambda s, u: review.approve(session=s, item_id=item.id, version=item.version,
                                                                        by=u.name, now=now))
                summary.approved += done is not None
            else:
                code = str(rng.choice(COMPLIANCE_REJECT_CODES))
                done = act(COMPLIANCE_USER, lambda s, u: review.reject(session=s, item_id=item.id, version=item.version,
                                                                       by=u.name, reason_code=code, now=now,
                                                                       comment="not in this form"))
                summary.compliance_rejected += done is not None
    # The weekend after: what customers answered to the last days' messages comes in.
    clock.at = start + timedelta(weeks=weeks) - timedelta(hours=1)
    record_outcomes(clock.now())
    summary.seconds = round(time.perf_counter() - began, 1)
    return summary


def month_start(now: datetime, weeks: int) -> datetime:
    """Where the simulated weeks begin: a Monday, `weeks` whole weeks before the week of `now`."""
    now = now.astimezone(timezone.utc)
    monday = (now - timedelta(days=now.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    return monday - timedelta(weeks=weeks)
