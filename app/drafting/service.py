"""Draft a script for a decision: template + facts -> masked prompt -> LLM -> checked draft, or the template.

Drafting never blocks a card: whatever goes wrong with the model (unreachable, slow, invalid twice),
the result is the approved template rendered with the customer's facts, marked `template_only` with
the reason. Drafting is a prepare step: `Drafter.gather` reads what the draft needs, `Drafter.compose` asks
the model (slow, no database), and the caller stores the result with `save` inside its own unit of work.

A stored draft is immutable. A change (a rep's edit, a compliance edit) is a new version in the same
lineage (`revise`); the lineage's newest version is its head, the only one that may be released. The
same inputs reuse the model's earlier text (the cache), stored as a new lineage of its own.
"""

from __future__ import annotations

import hashlib
import uuid
from datetime import datetime
from enum import StrEnum
from typing import Any

from markupsafe import escape
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from app.config import Settings
from app.drafting import compose
from app.drafting.facts import DraftFacts, facts_for, load_profile
from app.drafting.llm import Completion, LangChainClient, LLMClient, LLMError
from app.drafting.local import LocalServer
from app.drafting.pii import Masker
from app.drafting.prompts import PromptSet
from app.drafting.tables import Draft
from app.drafting.tuning import cosine
from app.errors import Conflict, InvalidInput, NotFound
from app.library import service as library
from app.library.templates import TemplateSpec, render

OPENING_ROOM = {"email": 160, "call": 160, "chat": 140}
MAX_TOKENS = {"opening": 120, "rewrite": 700}
# Greedy decoding for the small model's opening: it should adapt the example it was shown, not improvise,
# and the same inputs should give the same sentence; a capable model rewriting gets a little freedom. The local
# model decodes greedily at both tasks (as its held-out evaluation in `outreach llm train` did).
TEMPERATURE = {"opening": 0.0, "rewrite": 0.2}
# A small model's opening must stay this close (MiniLM cosine) to the vetted example it was shown last,
# with the product names aligned: it may adapt the tone of an approved pattern, not invent a new message.
# Measured: adaptations 0.57-0.78 before the examples named the customer's product (higher since), rambling
# ("I've been using it and I'm really enjoying it") 0.16-0.26, "we're doing well" for "check in" above 0.5.
OPENING_SIMILARITY = 0.6
# Fewer characters than this left in an SMS: no opening is attempted (the template goes out as approved).
MIN_OPENING_ROOM = 30
WITHHELD = "(withheld: this message read like instructions to a machine rather than words to a person)"
# Bumped when the way drafts are assembled or checked changes, so cached drafts made the old way expire.
COMPOSE_VERSION = "2"


class DraftMode(StrEnum):
    """Who wrote a draft version's text."""

    LLM = "llm"
    TEMPLATE_ONLY = "template_only"
    REP_EDIT = "rep_edit"
    COMPLIANCE_EDIT = "compliance_edit"


MAX_TEXT_CHARS = 10_000


class DraftRequest(BaseModel):
    """What to draft: for whom, on which channel, about what, from which approved template."""

    customer_id: str
    channel: str
    template_id: str
    product: str | None = None
    reasons: list[str] = Field(default_factory=list)
    decision_id: int | None = None


class PreparedDraft(BaseModel):
    """A draft composed but not stored yet: what `save` writes, in the caller's unit of work."""

    customer_id: str
    decision_id: int | None
    channel: str
    template_id: str
    template_version: int
    prompt_version: str | None
    profile_version: str | None
    mode: DraftMode
    drafting: str | None = None  # opening | rewrite (what the model was allowed to write)
    author: str
    model: str | None
    subject: str | None
    body: str
    facts_used: list[str] = Field(default_factory=list)
    fallback_reason: str | None = None
    latency_ms: float = 0.0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cache_key: str
    cached: bool = False

    @property
    def tokens_per_second(self) -> float:
        return self.completion_tokens / (self.latency_ms / 1000) if self.latency_ms > 0 else 0.0

    @property
    def label(self) -> str:
        """What the card says about who wrote it."""
        return label_of(self.mode, self.model, self.drafting, self.author)


class DraftResult(PreparedDraft):
    """A stored, immutable draft version."""

    id: str
    lineage_id: str
    revision: int
    created_at: datetime


def label_of(mode: str, model: str | None, drafting: str | None, author: str) -> str:
    if mode == DraftMode.TEMPLATE_ONLY:
        return "template only"
    if mode == DraftMode.REP_EDIT:
        return f"edited by {author}"
    if mode == DraftMode.COMPLIANCE_EDIT:
        return f"edited by compliance ({author})"
    return f"drafted by {model} ({drafting})"


class DraftInputs(BaseModel):
    """What a draft is built from, read from the store before the model is asked."""

    request: DraftRequest
    spec: TemplateSpec
    facts: DraftFacts
    cache_key: str
    cached: PreparedDraft | None = None


class Unusable(Exception):
    """The model answered, twice, with something that cannot be used."""


def resolve_mode(setting: str, *, local: bool) -> str:
    if setting != "auto":
        return setting
    return "opening" if local else "rewrite"


def _result(row: Draft) -> DraftResult:
    return DraftResult(**{name: getattr(row, name) for name in DraftResult.model_fields if name != "cached"})


def _prepared(row: Draft) -> PreparedDraft:
    return PreparedDraft(**{name: getattr(row, name) for name in PreparedDraft.model_fields if name != "cached"},
                         cached=True)


def get(*, session: Session, draft_id: str) -> DraftResult:
    row = session.get(Draft, draft_id)
    if row is None:
        raise NotFound(f"draft {draft_id!r} not found", field="draft_id")
    return _result(row)


def head(*, session: Session, lineage_id: str) -> DraftResult | None:
    """The newest version of a lineage: what a card shows and what may go out."""
    row = session.scalars(select(Draft).where(Draft.lineage_id == lineage_id).order_by(Draft.revision.desc())).first()
    return _result(row) if row is not None else None


def heads(*, session: Session, lineage_ids: set[str]) -> dict[str, DraftResult]:
    """The newest version of each lineage, in one query."""
    if not lineage_ids:
        return {}
    rows = session.scalars(select(Draft).where(Draft.lineage_id.in_(lineage_ids)).order_by(Draft.revision)).all()
    return {row.lineage_id: _result(row) for row in rows}  # later revisions overwrite earlier ones


def versions(*, session: Session, lineage_id: str) -> list[DraftResult]:
    """Every version of a lineage, oldest first."""
    rows = session.scalars(select(Draft).where(Draft.lineage_id == lineage_id).order_by(Draft.revision)).all()
    return [_result(row) for row in rows]


def save(*, session: Session, prepared: PreparedDraft, now: datetime) -> DraftResult:
    """Store a prepared draft as the first version of a new lineage."""
    new_id = uuid.uuid4().hex
    row = Draft(id=new_id, lineage_id=new_id, revision=1, created_at=now,
                **prepared.model_dump(exclude={"cached"}))
    session.add(row)
    session.flush()
    return _result(row).model_copy(update={"cached": prepared.cached})


def check_text(body: str, *, field: str = "text") -> str:
    """An edited script as people type it: not empty, not absurdly long, newlines normalised."""
    body = body.replace("\r\n", "\n")
    if not body.strip():
        raise InvalidInput("the script must not be empty", field=field)
    if len(body) > MAX_TEXT_CHARS:
        raise InvalidInput(f"the script is longer than {MAX_TEXT_CHARS:,} characters", field=field)
    return body


def revise(*, session: Session, base: DraftResult, body: str, author: str, mode: DraftMode, now: datetime,
           subject: str | None = None) -> DraftResult:
    """A new version of `base`'s lineage with another text. `base` must still be the lineage's head: an edit
    made from an older version would silently drop the changes made since (409)."""
    current = head(session=session, lineage_id=base.lineage_id)
    if current is None or current.id != base.id:
        raise Conflict(f"draft {base.id} was replaced by a newer version while you edited it: reload it",
                       field="draft")
    row = Draft(**{**base.model_dump(exclude={"id", "revision", "created_at", "cached"}),
                   "id": uuid.uuid4().hex, "revision": base.revision + 1, "mode": mode, "drafting": None,
                   "author": author, "body": body, "subject": base.subject if subject is None else subject,
                   "fallback_reason": None, "latency_ms": 0.0, "prompt_tokens": 0, "completion_tokens": 0,
                   "cache_key": f"{mode}-{uuid.uuid4().hex}", "created_at": now})
    session.add(row)
    try:  # two edits of one version at once: the unique (lineage, revision) lets one land, the other is a 409
        session.flush()
    except IntegrityError:
        raise Conflict(f"draft {base.id} was changed by someone else at the same moment: reload it",
                       field="draft") from None
    return _result(row)


class Drafter:
    """Drafts for one configuration; the client is created (and the local server started) on first use."""

    def __init__(self, settings: Settings, client: LLMClient | None = None, embedder: Any = None,
                 injection: Any = None) -> None:
        self.settings = settings
        # Customer text it flags as an attempt to instruct the model never reaches the prompt.
        self.injection = injection
        self._client = client
        self.local = LocalServer.configured(settings) if client is None and settings.uses_local_llm else None
        self.mode = resolve_mode(settings.llm_draft_mode, local=settings.uses_local_llm)
        self.prompts = PromptSet.load(settings.prompts_dir, self.mode)
        self.profile = load_profile(settings.company_profile)
        self.startup_s = 0.0
        self._embedder = embedder

    def _similarity(self, a: str, b: str) -> float:
        if self._embedder is None:
            from app.library.index import default_embedder

            self._embedder = default_embedder(self.settings.embedding_model)
        return cosine(self._embedder)(a, b)

    @property
    def model(self) -> str:
        if self._client is not None:
            return self._client.model
        return self.local.name if self.local else str(self.settings.llm_model)

    def client(self) -> LLMClient:
        if self._client is None:
            if self.local is not None:
                self.startup_s = self.local.ensure_running()
                self._client = self.local.client(self.settings)
            else:
                s = self.settings
                self._client = LangChainClient.configured(
                    provider=s.resolved_llm_provider, model=str(s.llm_model), base_url=s.llm_base_url,
                    api_key=s.llm_api_key, timeout_s=s.llm_timeout_s, max_retries=s.llm_max_retries,
                    concurrency=s.llm_concurrency, schema_style=s.llm_schema_style)
        return self._client

    def gather(self, *, session: Session, request: DraftRequest, now: datetime) -> DraftInputs:
        """Read what the draft needs: the live template version, the customer's facts, the cache."""
        specs = library.live_versions(session=session, template_id=request.template_id)
        if not specs:
            raise NotFound(f"template {request.template_id!r} has no approved, live version", field="template_id")
        spec = specs[0]
        facts = facts_for(session=session, customer_id=request.customer_id, product=request.product,
                          channel=request.channel, reasons=request.reasons, profile=self.profile, now=now)
        key = self._cache_key(spec, facts)
        hit = session.scalars(select(Draft).where(Draft.cache_key == key, Draft.mode == DraftMode.LLM)
                              .order_by(Draft.created_at.desc())).first()
        cached = _prepared(hit).model_copy(update={"decision_id": request.decision_id}) if hit is not None else None
        return DraftInputs(request=request, spec=spec, facts=facts, cache_key=key, cached=cached)

    def compose(self, inputs: DraftInputs) -> PreparedDraft:
        """The draft for `inputs`: the cached text, the model's, or the template with the reason why. Slow (the
        model); touches no database."""
        self.startup_s = 0.0  # the seconds this draft spent starting the local model (0 when it was running)
        if inputs.cached is not None:
            return inputs.cached
        spec, facts, request = inputs.spec, inputs.facts, inputs.request
        masker, masked_context = _masked(facts)
        masked_subject, masked_body = compose.split_subject(render(spec.body, masked_context))
        base = dict(customer_id=request.customer_id, decision_id=request.decision_id, channel=request.channel,
                    template_id=spec.id, template_version=spec.version, prompt_version=self.prompts.version,
                    profile_version=self.profile.version, cache_key=inputs.cache_key)
        try:
            subject, body, used, completion, spent = self._ask(spec, facts, masker, masked_subject, masked_body)
            model = completion.model or self.model
            return PreparedDraft(**base, mode=DraftMode.LLM, drafting=self.mode, author=model, model=model,
                                 subject=subject, body=body, facts_used=used, prompt_tokens=spent[0],
                                 completion_tokens=spent[1], latency_ms=round(completion.latency_ms, 1))
        except (LLMError, Unusable) as exc:
            if isinstance(exc, LLMError) and exc.kind == "unavailable" and self.local is not None:
                self._client = None  # the local server went away: the next draft starts it again
            return PreparedDraft(**base, mode=DraftMode.TEMPLATE_ONLY, author="template", model=self.model,
                                 subject=masker.unmask(masked_subject) if masked_subject else None,
                                 body=masker.unmask(masked_body), fallback_reason=str(exc))

    def prepare(self, *, session: Session, request: DraftRequest, now: datetime) -> PreparedDraft:
        """`gather` then `compose`: for callers that do not mind holding a read session while the model writes."""
        return self.compose(self.gather(session=session, request=request, now=now))

    def close(self) -> None:
        """Stop the local model server if this process started it."""
        if self.local is not None:
            self.local.stop_if_started_here()

    def _cache_key(self, spec: TemplateSpec, facts: DraftFacts) -> str:
        parts = [COMPOSE_VERSION, spec.id, str(spec.version), self.prompts.version, self.mode, self.model, self.profile.version,
                 facts.fingerprint()]
        return hashlib.sha256("\0".join(parts).encode()).hexdigest()

    def _prompt_values(self, spec: TemplateSpec, facts: DraftFacts, masker: Masker, subject: str | None,
                       body: str) -> dict[str, Any]:
        customer = {k: masker.mask(v) for k, v in facts.customer.items()}
        # Customer text is quoted inside <customer_said> tags: escaped, so "</customer_said>" in a message
        # cannot close the tag and speak outside the quote.
        flagged = self.injection.flags([q.text for q in facts.quotes]) if self.injection and facts.quotes else []
        quotes = [q.model_copy(update={"text": WITHHELD if flagged and flagged[i] else str(escape(masker.mask(q.text))),
                                       "when": str(escape(q.when)), "intent": str(escape(q.intent)) if q.intent else None})
                  for i, q in enumerate(facts.quotes)]
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
        messages, pattern = self.prompts.messages(values, product=facts.product["name"])
        approved = f"{masker.unmask(subject or '')}\n{masker.unmask(body)}"  # what a rewrite must keep the substance of
        trusted = " ".join([masker.unmask(subject or ""), masker.unmask(body), *facts.reasons,
                            *facts.customer.values(), facts.product["name"], *facts.company.values()])
        # A server that compiles the schema into a grammar stops the model at the opening's limit.
        schema = compose.wire_schema(self.mode, values["max_chars"], has_subject=values["has_subject"])
        client = self.client()
        temperature = 0.0 if self.local is not None else TEMPERATURE[self.mode]
        spent = [0, 0]
        problem = ""
        for _attempt in range(2):  # the answer, then one repair
            completion = client.complete(messages, max_tokens=MAX_TOKENS[self.mode], schema=schema,
                                         temperature=temperature)
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
                                          product_key=facts.product["key"],
                                          template=approved if self.mode == "rewrite" else None)
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


def draft_json(result: PreparedDraft | DraftResult) -> dict[str, Any]:
    """The `outreach draft --json` contract."""
    return {**result.model_dump(mode="json"), "tokens_per_second": round(result.tokens_per_second, 1),
            "label": result.label}
