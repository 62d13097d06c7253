"""Draft a script for a decision: template + facts -> masked prompt -> LLM -> checked draft, or the template.

Drafting never blocks a card: whatever goes wrong with the model (unreachable, slow, invalid twice),
the result is the approved template rendered with the customer's facts, marked `template_only` with
the reason. Every draft is stored with its template, prompt, profile and model versions; the same
inputs return the stored draft (the cache).
"""

from __future__ import annotations

import hashlib
import json
import uuid
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.drafting import compose
from app.drafting.facts import DraftFacts, facts_for, load_profile
from app.drafting.llm import Completion, LLMClient, LLMError, OpenAICompatibleClient
from app.drafting.local import MODEL_NAME, LocalServer
from app.drafting.pii import Masker
from app.drafting.prompts import PromptSet
from app.library import service as library
from app.library.templates import TemplateSpec, render
from app.store.db import transaction
from app.store.tables import Draft

OPENING_ROOM = {"email": 160, "call": 160, "chat": 140}
MAX_TOKENS = {"opening": 120, "rewrite": 700}
# Greedy decoding for the small model's opening: it should adapt the example it was shown, not improvise,
# and the same inputs should give the same sentence; a capable model rewriting gets a little freedom.
TEMPERATURE = {"opening": 0.0, "rewrite": 0.2}
# A small model's opening must stay this close (MiniLM cosine) to the vetted example it was shown last,
# with the product names aligned: it may adapt the tone of an approved pattern, not invent a new message.
# Measured: adaptations 0.57-0.78 before the examples named the customer's product (higher since), rambling
# ("I've been using it and I'm really enjoying it") 0.16-0.26, "we're doing well" for "check in" above 0.5.
OPENING_SIMILARITY = 0.6
# Fewer characters than this left in an SMS: no opening is attempted (the template goes out as approved).
MIN_OPENING_ROOM = 30
# Bumped when the way drafts are assembled or checked changes, so cached drafts made the old way expire.
COMPOSE_VERSION = "2"


class DraftRequest(BaseModel):
    """What to draft: for whom, on which channel, about what, from which approved template."""

    customer_id: str
    channel: str
    template_id: str
    product: str | None = None
    reasons: list[str] = Field(default_factory=list)
    decision_id: int | None = None


class DraftResult(BaseModel):
    """A draft as the card and the audit trail see it."""

    id: str
    customer_id: str
    decision_id: int | None
    channel: str
    template_id: str
    template_version: int
    prompt_version: str | None
    profile_version: str | None
    mode: str  # llm | template_only
    drafting: str | None  # opening | rewrite (what the model was allowed to write)
    model: str | None
    subject: str | None
    body: str
    facts_used: list[str]
    fallback_reason: str | None
    latency_ms: float
    prompt_tokens: int
    completion_tokens: int
    cached: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / (self.latency_ms / 1000) if self.latency_ms > 0 else 0.0

    @property
    def label(self) -> str:
        """What the card says about who wrote it."""
        if self.mode == "template_only":
            return "template only"
        return f"drafted by {self.model} ({self.drafting})"


class Unusable(Exception):
    """The model answered, twice, with something that cannot be used."""


def resolve_mode(setting: str, *, local: bool) -> str:
    if setting != "auto":
        return setting
    return "opening" if local else "rewrite"


def _result(row: Draft, *, cached: bool) -> DraftResult:
    return DraftResult(**{name: getattr(row, name) for name in DraftResult.model_fields if name != "cached"},
                       cached=cached)


class Drafter:
    """Drafts for one configuration; the client is created (and the local server started) on first use."""

    def __init__(self, settings: Settings, client: LLMClient | None = None) -> None:
        self.settings = settings
        self._client = client
        self.local = LocalServer.configured(settings) if client is None and settings.uses_local_llm else None
        self.mode = resolve_mode(settings.llm_draft_mode, local=settings.uses_local_llm)
        self.prompts = PromptSet.load(settings.prompts_dir, self.mode)
        self.profile = load_profile(settings.company_profile)
        self.startup_s = 0.0
        self._embedder: Any = None

    def _similarity(self, a: str, b: str) -> float:
        if self._embedder is None:
            from app.library.index import default_embedder

            self._embedder = default_embedder(self.settings.embedding_model)
        vectors = self._embedder.embed([a, b])
        return float(vectors[0] @ vectors[1])

    @property
    def model(self) -> str:
        if self._client is not None:
            return self._client.model
        return MODEL_NAME if self.local else str(self.settings.llm_model)

    def client(self) -> LLMClient:
        if self._client is None:
            if self.local is not None:
                self.startup_s = self.local.ensure_running()
                self._client = self.local.client(self.settings)
            else:
                s = self.settings
                self._client = OpenAICompatibleClient(base_url=str(s.llm_base_url), model=str(s.llm_model),
                                                      api_key=s.llm_api_key, timeout_s=s.llm_timeout_s,
                                                      max_retries=s.llm_max_retries, concurrency=s.llm_concurrency)
        return self._client

    def draft(self, factory: sessionmaker[Session], request: DraftRequest, *, now: datetime) -> DraftResult:
        """The draft for `request`: cached, drafted by the model, or the template with the reason why."""
        specs = library.live_versions(factory, request.template_id)
        if not specs:
            raise LookupError(f"template {request.template_id!r} has no approved, live version")
        spec = specs[0]
        with factory() as session:
            facts = facts_for(session, customer_id=request.customer_id, product=request.product,
                              channel=request.channel, reasons=request.reasons, profile=self.profile, now=now)
        key = self._cache_key(spec, facts)
        with factory() as session:
            hit = session.scalars(select(Draft).where(Draft.cache_key == key, Draft.mode == "llm")
                                  .order_by(Draft.created_at.desc())).first()
        if hit is not None:
            return _result(hit, cached=True)

        masker, masked_context = _masked(facts)
        masked_subject, masked_body = compose.split_subject(render(spec.body, masked_context))
        row = Draft(id=uuid.uuid4().hex, customer_id=request.customer_id, decision_id=request.decision_id,
                    channel=request.channel, template_id=spec.id, template_version=spec.version,
                    prompt_version=self.prompts.version, profile_version=self.profile.version, model=self.model,
                    cache_key=key, created_at=now, facts_used=[])
        try:
            subject, body, used, completion, spent = self._ask(spec, facts, masker, masked_subject, masked_body)
            row.mode, row.drafting, row.subject, row.body, row.facts_used = "llm", self.mode, subject, body, used
            row.model = completion.model or self.model
            row.prompt_tokens, row.completion_tokens = spent
            row.latency_ms = round(completion.latency_ms, 1)
        except (LLMError, Unusable) as exc:
            if isinstance(exc, LLMError) and exc.kind == "unavailable" and self.local is not None:
                self._client = None  # the local server went away: the next draft starts it again
            row.mode, row.drafting = "template_only", None
            row.subject = masker.unmask(masked_subject) if masked_subject else None
            row.body = masker.unmask(masked_body)
            row.fallback_reason = str(exc)
        with transaction(factory) as session:
            session.add(row)
        return _result(row, cached=False)

    def _cache_key(self, spec: TemplateSpec, facts: DraftFacts) -> str:
        parts = [COMPOSE_VERSION, spec.id, str(spec.version), self.prompts.version, self.mode, self.model, self.profile.version,
                 facts.fingerprint()]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def _prompt_values(self, spec: TemplateSpec, facts: DraftFacts, masker: Masker, subject: str | None,
                       body: str) -> dict[str, Any]:
        customer = {k: masker.mask(v) for k, v in facts.customer.items()}
        quotes = [q.model_copy(update={"text": masker.mask(q.text)}) for q in facts.quotes]
        room = compose.SMS_LIMIT - len(masker.unmask(body)) - 1 if facts.channel == "sms" \
            else OPENING_ROOM.get(facts.channel, 200)
        return {"customer": customer, "product": facts.product, "reasons": [masker.mask(r) for r in facts.reasons],
                "quotes": quotes, "body": body, "subject": subject, "disclosures": spec.disclosures,
                "channel_name": compose.CHANNEL_NAMES.get(facts.channel, facts.channel),
                "channel_rules": compose.CHANNEL_RULES.get(facts.channel, ""), "max_chars": room,
                "company": facts.company.get("name", ""), "has_subject": facts.channel == "email"}

    def _ask(self, spec: TemplateSpec, facts: DraftFacts, masker: Masker, subject: str | None, body: str
             ) -> tuple[str | None, str, list[str], Completion, tuple[int, int]]:
        values = self._prompt_values(spec, facts, masker, subject, body)
        if self.mode == "opening" and values["max_chars"] < MIN_OPENING_ROOM:
            raise Unusable(f"no room for an opening sentence in a {compose.SMS_LIMIT}-character SMS")
        messages = [{"role": "system", "content": self.prompts.render("system", **values)}]
        pattern = ""
        product = facts.product["name"]
        for shot in self.prompts.shots(values["reasons"]):
            # The examples speak of the customer's product: a small model copies what it is shown, and
            # copying another product's name would be a false claim.
            def ours(text: str, shot: dict = shot) -> str:
                return text.replace(shot["product"], product)

            reasons = [ours(r) for r in shot["reasons"]]
            example = {**values, "product": {"name": product}, "reasons": reasons, "quotes": []}
            # The short form on every channel: measured, the 135M model reproduces a short sentence faithfully
            # and wanders off a long one (0 of 31 long openings stayed close to their example).
            pattern = ours(shot.get("short", shot["opening"]))
            messages += [{"role": "user", "content": self.prompts.render("user", **example)},
                         {"role": "assistant", "content": json.dumps({"opening": pattern, "facts_used": reasons[:1]})}]
        # `pattern` is now the nearest example, shown last: the opening must stay close to it.
        messages.append({"role": "user", "content": self.prompts.render("user", **values)})
        trusted = " ".join([masker.unmask(subject or ""), masker.unmask(body), *facts.reasons,
                            *facts.customer.values(), facts.product["name"], *facts.company.values()])
        # A server that compiles the schema into a grammar stops the model at the opening's limit.
        schema = compose.wire_schema(self.mode, values["max_chars"])
        client = self.client()
        spent = [0, 0]
        problem = ""
        for _attempt in range(2):  # the answer, then one repair
            completion = client.complete(messages, max_tokens=MAX_TOKENS[self.mode], schema=schema,
                                         temperature=TEMPERATURE[self.mode])
            spent[0] += completion.prompt_tokens
            spent[1] += completion.completion_tokens
            try:
                output = compose.parse_output(completion.text, self.mode)
                if isinstance(output, compose.OpeningOutput):
                    # Close to the vetted example written for this kind of reason, or (no examples) naming
                    # the product or the reasons itself: either way it is about this customer.
                    grounding = None if pattern else " ".join([facts.product["name"], *facts.reasons])
                    opening = compose.check_opening(output.opening, values["max_chars"], grounding)
                    if pattern and self._similarity(opening, pattern) < OPENING_SIMILARITY:
                        raise ValueError("the opening strays from the approved example; adapt its wording")
                    draft_subject, draft_body = subject, compose.with_opening(body, opening)
                else:
                    draft_subject, draft_body = (output.subject or subject), output.body
                draft_subject = masker.unmask(draft_subject) if draft_subject else None
                draft_body = masker.unmask(draft_body).strip()
                issues = compose.problems(subject=draft_subject if facts.channel == "email" else None,
                                          body=draft_body, channel=facts.channel, disclosures=spec.disclosures,
                                          trusted=trusted, product_names=self.profile.products,
                                          product_key=facts.product["key"])
                if not issues:
                    used = [masker.unmask(f) for f in output.facts_used]
                    return draft_subject, draft_body, used, completion, (spent[0], spent[1])
                problem = "; ".join(issues)
            except ValueError as exc:
                problem = str(exc)
            # The repair turn quotes the problem: mask it too, it may echo a restored identifier.
            messages += [{"role": "assistant", "content": completion.text},
                         {"role": "user", "content": self.prompts.render("repair", problem=masker.mask(problem))}]
        raise Unusable(f"the model's answer was unusable twice: {problem}")


def _masked(facts: DraftFacts) -> tuple[Masker, dict[str, dict[str, str]]]:
    """The placeholder table for one customer, and the template context that uses the placeholders."""
    known = {"FIRST_NAME": facts.customer["first_name"] if facts.customer["first_name"] != "there" else "",
             "LAST_NAME": facts.customer["last_name"], "REP_NAME": facts.rep.get("name", ""),
             "REP_FIRST_NAME": facts.rep.get("first_name", ""), "REP_PHONE": facts.rep.get("phone", ""),
             "REP_EMAIL": facts.rep.get("email", ""),
             **{key.upper(): value for key, value in facts.private.items()}}
    masker = Masker(known)
    context = facts.template_context
    masked = {
        "customer": {k: masker.mask(v) for k, v in context["customer"].items()},
        "product": context["product"],
        "rep": {k: masker.mask(v) for k, v in context["rep"].items()},
        "company": context["company"],
    }
    return masker, masked


def draft_json(result: DraftResult) -> dict[str, Any]:
    """The `outreach draft --json` contract."""
    return {**result.model_dump(mode="json"), "tokens_per_second": round(result.tokens_per_second, 1),
            "label": result.label}
