"""Retrieval: the approved templates that fit a decision, ranked by meaning and by how they perform.

Score = semantic similarity + intent match + performance. Performance is the template's positive-
outcome rate in the customer's segment as a Beta posterior: its mean against the prior mean, plus
an exploration bonus from its spread, so a new template (no results yet) gets tried and a proven
weak one sinks. Every hit is checked against the store before it is returned: only the live,
approved, not-retired version can come out, whatever the index holds.
"""

from __future__ import annotations

import math

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from app.domain import Channel
from app.library import service
from app.library.index import TemplateIndex, where_clause
from app.library.templates import Stage

PRIOR_MEAN = 0.10  # positive-outcome rate assumed for a template with no results
PRIOR_STRENGTH = 20.0  # how many contacts of evidence the prior is worth
PERFORMANCE_WEIGHT = 1.0
EXPLORATION_WEIGHT = 0.5
INTENT_BONUS = 0.08
CANDIDATES = 25


class RetrievalRequest(BaseModel):
    """What a decision knows when it asks for a script."""

    model_config = ConfigDict(use_enum_values=True)

    text: str = ""
    channel: Channel | None = None
    product: str | None = None
    stage: Stage | None = None
    intents: list[str] = Field(default_factory=list)
    language: str = "en"
    segment: str | None = None
    reasons: list[str] = Field(default_factory=list)
    k: int = Field(default=5, ge=1, le=50)


class RetrievedTemplate(BaseModel):
    id: str
    version: int
    title: str
    channel: str
    stage: str
    score: float
    semantic: float
    performance: float
    contacts: int
    positive: int
    why: list[str]


INTENT_FEATURES = {f"{intent}_14d": intent for intent in
                   ("pricing_question", "upsell_interest", "renewal_risk", "implementation_blocker",
                    "change_request", "complaint")}
CONTACT_FEATURES = {"days_since_last_contact", "previous_responses", "days_since_last_response"}


def request_for_decision(*, channel: str, product: str | None, reasons: list[dict], lifecycle_stage: str | None,
                         segment: str | None, k: int = 3) -> RetrievalRequest:
    """What to ask the library for a decision: intents and stage follow from the reasons the rep will see."""
    features = {r["feature"] for r in reasons}
    intents = [INTENT_FEATURES[f] for f in features if f in INTENT_FEATURES]
    if "change_request" in intents:
        stage = Stage.CHANGE_REQUEST
    elif "renewal_risk" in intents:
        stage = Stage.RENEWAL
    elif "upsell_interest" in intents or lifecycle_stage == "active":
        stage = Stage.UPSELL
    elif lifecycle_stage == "churned":
        stage = Stage.WIN_BACK
    else:
        stage = Stage.FOLLOW_UP if features & CONTACT_FEATURES else Stage.NEW_LEAD
    return RetrievalRequest(channel=channel, product=product, stage=stage, intents=sorted(intents), segment=segment,
                            reasons=[r["text"] for r in reasons], k=k)


def build_query(request: RetrievalRequest) -> str:
    """A natural-language query from the decision: purpose first, like the indexed text."""
    parts = []
    if request.stage:
        parts.append(f"Stage: {request.stage.replace('_', ' ')}.")
    if request.intents:
        parts.append("Intents: " + ", ".join(i.replace("_", " ") for i in request.intents) + ".")
    if request.product:
        parts.append(f"Product: {request.product.replace('_', ' ')}.")
    if request.reasons:
        parts.append("Customer " + "; ".join(request.reasons) + ".")
    if request.text:
        parts.append(request.text)
    return " ".join(parts) or "general follow up"


def posterior(contacts: int, positive: int) -> tuple[float, float]:
    """Beta posterior mean and standard deviation of the positive-outcome rate."""
    a = PRIOR_MEAN * PRIOR_STRENGTH + positive
    b = (1 - PRIOR_MEAN) * PRIOR_STRENGTH + contacts - positive
    mean = a / (a + b)
    return mean, math.sqrt(a * b / ((a + b) ** 2 * (a + b + 1)))


def retrieve(*, session: Session, index: TemplateIndex, request: RetrievalRequest) -> list[RetrievedTemplate]:
    where = where_clause(channel=request.channel, language=request.language, product=request.product,
                         stage=request.stage)
    hits = index.query(build_query(request), n=max(CANDIDATES, request.k * 3), where=where)
    live = {spec.id: spec for spec in service.live_versions(session=session)}
    # The approval gate: only the store's live version counts, whatever a stale index says.
    hits = [(i, sim, meta) for i, sim, meta in hits if i in live and live[i].version == meta["version"]]
    if request.stage != Stage.CHANGE_CONFIRMATION:  # they speak of a change made, with values only it has
        hits = [(i, sim, meta) for i, sim, meta in hits if live[i].stage != Stage.CHANGE_CONFIRMATION]
    stats = service.performance(session=session, template_ids=[i for i, _, _ in hits], segment=request.segment)
    _, prior_sd = posterior(0, 0)
    ranked = []
    for template_id, similarity, _ in hits:
        spec = live[template_id]
        contacts, positive = stats.get(template_id, (0, 0))
        mean, sd = posterior(contacts, positive)
        performance = PERFORMANCE_WEIGHT * (mean - PRIOR_MEAN) + EXPLORATION_WEIGHT * (sd - prior_sd)
        matched = sorted(set(request.intents) & set(spec.intents))
        score = similarity + INTENT_BONUS * bool(matched) + performance
        why = [f"semantic match {similarity:.2f} to the request"]
        filters = [f"channel {spec.channel}" if request.channel else None,
                   f"product {request.product}" if request.product else None,
                   f"stage {spec.stage}" if request.stage else None]
        if any(filters):
            why.append("fits " + ", ".join(f for f in filters if f))
        if matched:
            why.append("written for " + ", ".join(m.replace("_", " ") for m in matched))
        segment = f" in segment {request.segment}" if request.segment else ""
        if contacts:
            why.append(f"{positive} positive outcomes from {contacts} contacts{segment} ({positive / contacts:.0%})")
        else:
            why.append(f"no results yet{segment}: given a chance by the prior")
        ranked.append(RetrievedTemplate(id=template_id, version=spec.version, title=spec.title, channel=spec.channel,
                                        stage=spec.stage, score=round(score, 4), semantic=round(similarity, 4),
                                        performance=round(performance, 4), contacts=contacts, positive=positive,
                                        why=why))
    ranked.sort(key=lambda r: (-r.score, r.id))
    return ranked[: request.k]


def best_for_decision(*, session: Session, index: TemplateIndex, decision: object, lifecycle_stage: str | None,
                      segment: str | None) -> RetrievedTemplate | None:
    """The best approved template for a decision; falls back to any stage when none fits the exact stage."""
    request = request_for_decision(channel=decision.channel, product=decision.product,  # type: ignore[attr-defined]
                                   reasons=decision.reasons, lifecycle_stage=lifecycle_stage,  # type: ignore[attr-defined]
                                   segment=segment, k=1)
    found = (retrieve(session=session, index=index, request=request)
             or retrieve(session=session, index=index, request=request.model_copy(update={"stage": None})))
    return found[0] if found else None
