"""The guardrail validators, registered with guardrails-ai. Each returns pass, or fail with spans and a
reason a human can read; whether a fail blocks or asks for approval is policy (`guardrails/policy.yaml`).

Every validator reads the same metadata: `context`, a ReviewContext with the channel, the recipient,
the approved template and the facts the draft may use.
"""

from __future__ import annotations

import re
import threading
from typing import Any

from guardrails.classes.rc import RC
from guardrails.settings import settings as guardrails_settings
from guardrails.validator_base import (ErrorSpan, FailResult, PassResult, ValidationResult, Validator,
                                       register_validator)
from pydantic import BaseModel, Field

from app.review import personal_data
from app.review.judge import Judge, Judgement
from app.review.normalize import fold
from app.review.policy import Category, ReviewPolicy
from app.review.semantic import ExampleMatcher, sentences

# guardrails-ai turns on its hub metrics when ~/.guardrailsrc is missing; nothing leaves this machine, and
# writing into the user's home is not ours to do: configure it in-process (tracing: OTEL_SDK_DISABLED, config.py).
guardrails_settings.rc = RC(enable_metrics=False, use_remote_inferencing=False)
guardrails_settings.disable_tracing = True

NEGATION = re.compile(r"\b(not|never|no one|nobody|cannot|can't|won't|don't|doesn't|isn't|aren't)\b[^.!?]{0,30}$", re.I)
# Claims whose honest negation ("we cannot guarantee returns") is fine to say.
NEGATION_CLEARS = frozenset({"guaranteed_returns", "pre_approved", "medical_or_legal"})
# Offer wording: a word, and the pattern that makes it an offer ("feel free to" is not one).
OFFERS = {"free": r"\bfree\b(?!\s+to\b)(?<!feel free)", "discount": r"\bdiscount",
          "% off": r"(?:%|\bper ?cent)\s*off\b", "coupon": r"\bcoupon", "promo code": r"\bpromo code",
          "waive": r"\bwaive", "complimentary": r"\bcomplimentary\b", "bonus": r"\bbonus\b", "refund": r"\brefund",
          "cashback": r"\bcash ?back\b", "rebate": r"\brebate", "half price": r"\bhalf[- ]price",
          "lowest price": r"\blowest price", "cheapest": r"\bcheapest\b"}
DATE_WORDS = re.compile(r"\b(?:jan(?:uary)?|feb(?:ruary)?|mar(?:ch)?|apr(?:il)?|may|jun(?:e)?|jul(?:y)?|aug(?:ust)?|"
                        r"sep(?:tember)?|oct(?:ober)?|nov(?:ember)?|dec(?:ember)?)\s+\d{1,2}\b|\b\d{1,2}\s+(?:jan|feb|mar|"
                        r"apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\b|\b\d{1,2}/\d{1,2}(?:/\d{2,4})?\b", re.I)


class ReviewContext(BaseModel):
    """What the validators know besides the text."""

    channel: str
    subject: str | None = None
    recipient: dict[str, str] = Field(default_factory=dict)  # first_name, email, phone of the customer written to
    allowed_contacts: list[str] = Field(default_factory=list)  # company and rep contact details
    template_text: str | None = None  # the approved template as rendered for this customer
    template_disclosures: list[str] = Field(default_factory=list)
    facts: list[str] = Field(default_factory=list)  # trusted facts: reasons, product, names
    product_names: dict[str, str] = Field(default_factory=dict)
    product_key: str | None = None
    company_domains: list[str] = Field(default_factory=list)  # hosts links and addresses of ours live on
    # What the customer wrote recently that reads like instructions to a model: a draft must not echo it.
    customer_instructions: list[str] = Field(default_factory=list)

    def folded(self) -> ReviewContext:
        """The texts a draft is compared with, read the way the draft is read (NFKC, look-alikes folded)."""
        return self.model_copy(update={
            "subject": fold(self.subject) if self.subject else self.subject,
            "template_text": fold(self.template_text) if self.template_text else self.template_text,
            "template_disclosures": [fold(d) for d in self.template_disclosures],
            "facts": [fold(f) for f in self.facts], "allowed_contacts": [fold(c) for c in self.allowed_contacts]})


def _ctx(metadata: dict[str, Any]) -> ReviewContext:
    return metadata["context"]


def _fail(reason: str, spans: list[tuple[int, int, str]]) -> FailResult:
    return FailResult(error_message=reason, error_spans=[ErrorSpan(start=s, end=e, reason=r) for s, e, r in spans])


def _find_phrases(text: str, category: Category) -> list[tuple[int, int, str]]:
    lowered = text.lower()
    spans = []
    for phrase in category.phrases:
        for match in re.finditer(rf"(?<!\w){re.escape(phrase)}(?!\w)", lowered):
            spans.append((match.start(), match.end(), category.reason))
    for pattern in category.patterns:
        spans += [(m.start(), m.end(), category.reason) for m in pattern.finditer(text)]
    return spans


def _readings(value: str, metadata: dict[str, Any]) -> list[tuple[str, Any]]:
    """The text as validators see it (the clean reading) and, when it differs, the plain reading (spaced
    letters joined, stand-ins read as letters), each with the map of its spans into the clean reading."""
    seen = metadata.get("view")
    readings: list[tuple[str, Any]] = [(value, lambda s, e: (s, e))]
    if seen is not None and seen.plain.text != value:
        readings.append((seen.plain.text, seen.plain.span))
    return readings


def _flagged(metadata: dict[str, Any], judge: Judge) -> list[tuple[int, int]]:
    """The spans of the sentences the judge finds risky or sensitive (clean-reading coordinates)."""
    return [(s, e) for s, e, judged in _judged(metadata, judge) if judged.risk >= judge.data.review or judged.watched]


def _overlaps(span: tuple[int, int], flagged: list[tuple[int, int]] | None) -> bool:
    """Whether `span` overlaps a flagged sentence; anything does when there is no judge (None)."""
    return flagged is None or any(s < span[1] and span[0] < e for s, e in flagged)


def _category_fail(value: str, metadata: dict[str, Any], categories: tuple[Category, ...],
                   matcher: ExampleMatcher | None, threshold: float, approved: str | None,
                   negation_clears: frozenset[str] = frozenset(), judge: Judge | None = None) -> ValidationResult:
    spans: list[tuple[int, int, str]] = []
    # A paraphrase of a policy example counts only where the learned judge also flags the sentence: frozen embeddings
    # match topic, not stance ("our partner's usual checks come before any decision" sits close to "you are eligible
    # already, no checks required"). On every labelled set the paraphrase matchers caught nothing the other
    # validators missed, and held three honest messages (eval/guardrail_*.jsonl). Without a judge a paraphrase
    # counts on its own; with one that flags nothing, the frozen embeddings are not even computed.
    flagged = None if judge is None else _flagged(metadata, judge)
    for text, to_clean in _readings(value, metadata):
        found = []
        for category in categories:
            for start, end, reason in _find_phrases(text, category):
                if category.name in negation_clears and NEGATION.search(text[max(0, start - 40):start]):
                    continue  # "we cannot guarantee returns" is the honest opposite of the claim
                found.append((start, end, f"{category.name}: {reason}"))
        if matcher is not None and (flagged is None or flagged):
            reasons = {c.name: c.reason for c in categories}
            covered = {(s, e) for s, e, _ in found}
            for sentence, name, score in matcher.matches(text, threshold, approved, metadata.get("vectors")):
                if not any(s >= sentence.start and e <= sentence.end for s, e in covered) \
                        and not (name in negation_clears and NEGATION.search(sentence.text)) \
                        and _overlaps(to_clean(sentence.start, sentence.end), flagged):
                    found.append((sentence.start, sentence.end, f"{name}: {reasons[name]} (reads like a known "
                                                                f"example, similarity {score:.2f})"))
        for start, end, reason in found:
            clean_start, clean_end = to_clean(start, end)
            if not any(abs(clean_start - s) < 3 and r.split(":")[0] == reason.split(":")[0] for s, _, r in spans):
                spans.append((clean_start, clean_end, reason))
    if not spans:
        return PassResult()
    spans.sort()
    return _fail("; ".join(sorted({r.split(" (reads")[0] for _, _, r in spans})), spans)


@register_validator(name="outreach/pii", data_type="string")
class NoForeignPII(Validator):
    """No one else's email or phone, and no card, account or national id number, in an outgoing message."""

    def __init__(self, policy: ReviewPolicy, on_fail: Any = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail, **kwargs)
        self.policy = policy

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        context = _ctx(metadata)
        allowed = {_norm(v) for v in context.allowed_contacts if v}
        allowed |= {_norm(context.recipient[k]) for k in self.policy.allow_recipient if context.recipient.get(k)}
        spans = []
        for found in personal_data.find(value, self.policy.pii_patterns):
            if found.kind in UNBLOCKED_KINDS:
                continue
            text = value[found.start:found.end]
            if _norm(text) in allowed:
                continue
            if found.kind == "email" and _ours(text.rsplit("@", 1)[1].lower(), context.company_domains):
                continue  # an address of ours (a colleague, a team inbox) is not someone's personal data
            who = "someone else's " if found.kind in ("email", "phone") else ""
            spans.append((found.start, found.end, f"{who}{found.kind.replace('_', ' ')} in an outgoing message"))
        if not spans:
            return PassResult()
        return _fail("personal data that must not be sent: " + ", ".join(sorted({r for _, _, r in spans})), spans)


# Found and measured (eval/pii_benchmark.py) but not blocked: a message names people (the recipient, colleagues)
# and may give an address on purpose; the finder's precision on these is not yet good enough to block on.
UNBLOCKED_KINDS = frozenset({"person", "street_address"})


def _norm(value: str) -> str:
    return re.sub(r"[^\w@.+]", "", value.lower())


class _PolicyCategories(Validator):
    """Phrases, patterns and examples (matched by meaning) of one policy file's categories, read through
    disguises. Subclasses name the categories, the similarity threshold and which honest negations clear them."""

    categories: str  # the ReviewPolicy field: claims | tone | conduct | sensitive
    threshold: str  # the key in policy.yaml's `semantic`
    negation_clears: frozenset[str] = frozenset()

    def __init__(self, policy: ReviewPolicy, matcher: ExampleMatcher | None, judge: Judge | None = None,
                 on_fail: Any = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail, **kwargs)
        self.policy, self.matcher, self.judge = policy, matcher, judge

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        return _category_fail(value, metadata, getattr(self.policy, self.categories), self.matcher,
                              self.policy.semantic[self.threshold], _ctx(metadata).template_text, self.negation_clears,
                              self.judge)


@register_validator(name="outreach/claims", data_type="string")
class NoProhibitedClaims(_PolicyCategories):
    """Guaranteed returns, risk-free, pre-approval, medical or legal promises, false urgency: literal or paraphrased."""

    categories, threshold, negation_clears = "claims", "claims_threshold", NEGATION_CLEARS


@register_validator(name="outreach/disclosures", data_type="string")
class RequiredDisclosures(Validator):
    """The template's disclosures word for word, and the channel's opt-out line, are in the text."""

    def __init__(self, policy: ReviewPolicy, on_fail: Any = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail, **kwargs)
        self.policy = policy

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        context = _ctx(metadata)
        flat = " ".join(value.split())
        missing = [f"the template's line {line!r} is missing" for line in context.template_disclosures
                   if " ".join(line.split()) not in flat]
        for rule in self.policy.disclosures.get(context.channel, []):
            if not any(form.lower() in flat.lower() for form in rule["any_of"]):
                missing.append(f"{rule['reason']} (e.g. {rule['any_of'][0]!r})")
        if not missing:
            return PassResult()
        end = len(value)
        return _fail("; ".join(missing), [(max(0, end - 1), end, m) for m in missing])


# Numbers that make a claim: a price, a percentage or statistic, a multiplier, a deadline. A seat count, a
# meeting length or a time of day is not a claim and never holds a message on its own.
CLAIM_NUMBERS = re.compile(
    r"[$€£¥]\s?\d[\d,.]*(?:\s?(?:k|m|bn))?|\b\d[\d,.]*\s?(?:usd|eur|gbp|dollars?|euros?|pounds?)\b"
    r"|\b\d+(?:[.,]\d+)?\s?(?:%|percent\b|per cent\b)"
    r"|\b\d+(?:[.,]\d+)?\s?(?:x|×)(?=\s|$|[.,!?])|\b\d+(?:[.,]\d+)?\s+times\s+(?:more|faster|better|higher|cheaper|less)\b",
    re.I)
DEADLINE = re.compile(r"\b(?:by|until|till|before|ends?|expires?|through|no later than)\s+(?:next\s+)?(?:monday|tuesday|"
                      r"wednesday|thursday|friday|saturday|sunday|tomorrow|tonight|midnight|noon|the end of (?:the )?"
                      r"(?:day|week|month|quarter|year)|end of (?:the )?(?:day|week|month|quarter|year))\b"
                      r"|\bonly (?:today|tonight|this week|this month|until)\b|\b(?:last|final) (?:day|chance)\b", re.I)


def _claim(figure: str) -> tuple[str, str]:
    """A claim figure as (kind, value): "$1,200" and "1200 dollars" are ("money", "1200"), "20 %" and
    "20 percent" ("percent", "20"), "3x" and "3 times faster" ("multiple", "3")."""
    lowered = figure.lower()
    kind = ("percent" if re.search(r"%|percent|per cent", lowered)
            else "multiple" if re.search(r"\d\s?(?:x|×)|\btimes\b", lowered) else "money")
    number = re.search(r"\d[\d,.]*", figure).group().replace(",", "").rstrip(".")
    return kind, number.removesuffix(".00")


def _backed_figures(context: ReviewContext) -> set[tuple[str, str]]:
    """The claim figures the template and the facts give. A figure is backed by the same kind of figure there
    ("$49" by "49 dollars"), not by the same digits anywhere: the 20 of a phone number or a seat count does not
    back "20 euros less"."""
    return {_claim(m.group()) for m in CLAIM_NUMBERS.finditer(" ".join([context.template_text or "", *context.facts]))}


@register_validator(name="outreach/faithfulness", data_type="string")
class OnlyGivenFacts(Validator):
    """A draft written from an approved template adds no claim the template and the customer's facts do not
    support: no price, percentage, statistic, multiplier, deadline, offer or other product. Neutral numbers (seats,
    minutes, times) are not claims. Without a template (`outreach review check`), only claim numbers count."""

    def __init__(self, on_fail: Any = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail, **kwargs)

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        context = _ctx(metadata)
        sources = " ".join([context.template_text or "", *context.facts, *context.allowed_contacts,
                            *context.recipient.values()])
        backed = _backed_figures(context)
        flat_sources = " ".join(sources.lower().split())
        templated = context.template_text is not None
        spans = []
        for match in CLAIM_NUMBERS.finditer(value):
            if _claim(match.group()) not in backed:
                spans.append((match.start(), match.end(), f"{match.group().strip()!r} is a figure the template and "
                                                          "the facts do not give"))
        if templated:
            for pattern, what in ((DATE_WORDS, "date"), (DEADLINE, "deadline")):
                for match in pattern.finditer(value):
                    if match.group().lower() not in flat_sources:
                        spans.append((match.start(), match.end(), f"{what} {match.group()!r} is not in the template"))
            for word, pattern in OFFERS.items():
                for match in re.finditer(pattern, value, re.I):
                    if not re.search(pattern, flat_sources, re.I):
                        spans.append((match.start(), match.end(), f"offer wording {word!r} is not in the template"))
        for key, name in context.product_names.items():
            if context.product_key and key != context.product_key and name.lower() not in flat_sources:
                for match in re.finditer(rf"\b{re.escape(name)}\b", value, re.I):
                    spans.append((match.start(), match.end(), f"product {name!r} is not the one recommended"))
        if not spans:
            return PassResult()
        spans = sorted(set(spans))
        return _fail("claims not backed by the template or the facts: " + "; ".join(r for _, _, r in spans[:5]), spans)


@register_validator(name="outreach/tone", data_type="string")
class RespectfulTone(_PolicyCategories):
    """No aggressive, discriminatory or manipulative wording."""

    categories, threshold = "tone", "tone_threshold"


ECHO_WORDS = 5  # this many words in a row from an instruction-like customer message is an echo


def echoes(text: str, said: str, words: int = ECHO_WORDS) -> list[tuple[int, int]]:
    """Where `text` repeats `words` words in a row of what the customer `said`: the (start, end) of each run."""
    ours = [(m.group().lower(), m.start(), m.end()) for m in re.finditer(r"\w+", text)]
    theirs = re.findall(r"\w+", said.lower())
    shingles = {tuple(theirs[i:i + words]) for i in range(len(theirs) - words + 1)}
    return [(ours[i][1], ours[i + words - 1][2]) for i in range(len(ours) - words + 1)
            if tuple(w for w, _, _ in ours[i:i + words]) in shingles]


@register_validator(name="outreach/injection_echo", data_type="string")
class NoInstructionLeak(Validator):
    """No leaked instructions, prompt text, data markup or unfilled placeholders."""

    def __init__(self, policy: ReviewPolicy, on_fail: Any = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail, **kwargs)
        self.policy = policy

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        lowered = value.lower()
        spans = []
        for phrase in self.policy.injection_phrases:
            start = lowered.find(phrase)
            if start >= 0:
                spans.append((start, start + len(phrase), f"instruction or prompt text {phrase!r}"))
        for pattern in self.policy.injection_patterns:
            spans += [(m.start(), m.end(), f"markup that should never reach a customer: {m.group()!r}")
                      for m in pattern.finditer(value)]
        context = _ctx(metadata)
        asked: set[tuple[str, str]] = set()
        for said in context.customer_instructions:
            spans += [(start, end, "repeats what the customer wrote to instruct the model")
                      for start, end in echoes(value, said)]
            asked |= {_claim(m.group()) for m in CLAIM_NUMBERS.finditer(said)}
        # Fewer words than an echo, but the point of the instruction: a figure ("70% Rabatt") the template and the
        # facts do not give, taken from what the customer told the model to write.
        if asked:
            asked -= _backed_figures(context)
            spans += [(m.start(), m.end(), f"gives the figure {m.group().strip()!r} the customer's instruction asked for")
                      for m in CLAIM_NUMBERS.finditer(value) if _claim(m.group()) in asked]
        if not spans:
            return PassResult()
        return _fail("leaked instructions or markup: " + "; ".join(sorted({r for _, _, r in spans})), sorted(spans))


@register_validator(name="outreach/channel_limits", data_type="string")
class ChannelLimits(Validator):
    """SMS length, chat length, an email's subject line present and short enough."""

    def __init__(self, policy: ReviewPolicy, on_fail: Any = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail, **kwargs)
        self.policy = policy

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        context = _ctx(metadata)
        limits = self.policy.limits
        problems = []
        value = metadata["view"].original if "view" in metadata else value  # what the customer's phone counts
        if context.channel == "sms" and len(value) > limits["sms_chars"]:
            problems.append((limits["sms_chars"], len(value), f"SMS is {len(value)} characters (limit {limits['sms_chars']})"))
        if context.channel == "chat" and len(value) > limits["chat_chars"]:
            problems.append((limits["chat_chars"], len(value), f"chat message is {len(value)} characters"))
        if context.channel == "email":
            if not (context.subject or "").strip():
                problems.append((0, 0, "email has no subject line"))
            elif len(context.subject or "") > limits["subject_chars"]:
                problems.append((0, 0, f"subject is {len(context.subject or '')} characters (limit {limits['subject_chars']})"))
        if not problems:
            return PassResult()
        return _fail("; ".join(p[2] for p in problems), problems)


HIDDEN_REASONS = {"bidi": "a direction override: what is shown is not what is written",
                  "escape": "a terminal escape sequence", "control": "a control character",
                  "zero_width": "an invisible (zero-width) character",
                  "lookalike": "a letter of another script that looks like a Latin one"}


def _hidden(metadata: dict[str, Any], kinds: set[str]) -> ValidationResult:
    seen = metadata["view"]
    spans = []
    for item in seen.hidden:
        if item.kind not in kinds:
            continue
        # Hidden characters are not in the clean reading: point at the visible text right after them.
        at = next((i for i, o in enumerate(seen.clean.origin) if o >= item.start), max(len(seen.clean.text) - 1, 0))
        spans.append((at, min(at + 8, len(seen.clean.text)), HIDDEN_REASONS[item.kind]))
    if not spans:
        return PassResult()
    return _fail("text hidden from the reader: " + ", ".join(sorted({r for _, _, r in spans})), spans)


@register_validator(name="outreach/hidden_text", data_type="string")
class NoHiddenText(Validator):
    """No direction overrides, terminal escapes or control characters: they make a reader see something else."""

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        return _hidden(metadata, {"bidi", "escape", "control"})


@register_validator(name="outreach/disguised_text", data_type="string")
class NoDisguisedText(Validator):
    """Zero-width characters and look-alike letters of other scripts: removed before judging, and shown to a
    person, since nobody types them into an honest message."""

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        return _hidden(metadata, {"zero_width", "lookalike"})


URL = re.compile(r"\b(?:https?://|www\.)[^\s<>\"')\]]+", re.I)
HOST_IN_URL = re.compile(r"^(?:https?://)?(?:[^@/\s]+@)?(?P<host>[^/:?#\s]+)", re.I)
IPV4 = re.compile(r"^\d{1,3}(?:\.\d{1,3}){3}$")


def _edits(a: str, b: str) -> int:
    """Levenshtein distance (short strings: host names)."""
    row = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        prev, row[0] = row[0], i
        for j, cb in enumerate(b, start=1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (ca != cb))
    return row[-1]


def _ours(host: str, domains: list[str]) -> bool:
    return any(host == d or host.endswith("." + d) for d in domains)


@register_validator(name="outreach/links", data_type="string")
class OnlyOurLinks(Validator):
    """Links only to the company's own domains: not another site, a look-alike of ours, a shortener, a raw IP
    address or a host in another script."""

    def __init__(self, policy: ReviewPolicy, on_fail: Any = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail, **kwargs)
        self.policy = policy
        tlds = "|".join(sorted(map(re.escape, policy.links.get("bare_tlds", [])), key=len, reverse=True))
        self.bare = re.compile(rf"(?<![\w@.-])(?:[a-z0-9-]+\.)+(?:{tlds})(?![\w-])(?:/[^\s<>\"')]*)?", re.I)

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        context = _ctx(metadata)
        ours = [d.lower() for d in [*context.company_domains, *self.policy.links.get("allowed_domains", [])]]
        shorteners = set(self.policy.links.get("shorteners", []))
        limit = int(self.policy.links.get("lookalike_edits", 2))
        original = metadata["view"].original if "view" in metadata else value
        found: dict[tuple[int, int], str] = {}
        for match in [*URL.finditer(value), *self.bare.finditer(value)]:
            if any(s <= match.start() < e for s, e in found):
                continue
            host = HOST_IN_URL.match(match.group()).group("host").lower().rstrip(".")
            start, end = metadata["view"].clean.span(match.start(), match.end()) if "view" in metadata else match.span()
            raw = original[start:end]
            if not raw.isascii() or host.startswith("xn--") or ".xn--" in host:
                reason = f"{host}: a host in another script or punycode, posing as a familiar name"
            elif IPV4.match(host):
                reason = f"{host}: a raw IP address instead of our domain"
            elif host in shorteners or any(host.endswith("." + s) for s in shorteners):
                reason = f"{host}: a link shortener hides where it goes"
            elif _ours(host, ours):
                continue
            elif any(d in host or (len(d.split(".")[0]) >= 4 and d.split(".")[0] in host) for d in ours) \
                    or any(_edits(host.removeprefix("www."), d) <= limit for d in ours):
                reason = f"{host}: looks like our domain but is not ({', '.join(ours)})"
            else:
                reason = f"{host}: not one of our domains ({', '.join(ours) or 'none configured'})"
            found[(match.start(), match.end())] = reason
        if not found:
            return PassResult()
        return _fail("links that do not go to our own domains: " + "; ".join(found.values()),
                     [(s, e, r) for (s, e), r in sorted(found.items())])


SELF_SERVICE = re.compile(r"(re-?set|change|update)\b", re.I)
SELF_SERVICE_CUE = re.compile(r"\b(yourself|settings|in your account|on your account page|self-service)\b", re.I)


@register_validator(name="outreach/credentials", data_type="string")
class NoCredentialRequests(Validator):
    """No asking for passwords, one-time codes, PINs, card numbers or login details (honest negations pass)."""

    def __init__(self, policy: ReviewPolicy, on_fail: Any = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail, **kwargs)
        self.policy = policy

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        spans = []
        for text, to_clean in _readings(value, metadata):
            for pattern in self.policy.credential_patterns:
                for match in pattern.finditer(text):
                    before = text[max(0, match.start() - 40):match.start()]
                    if NEGATION.search(before) or re.search(r"\b(never|not|won.t|will not|do not|don.t)\b",
                                                            match.group(), re.I):
                        continue  # "we will never ask you to enter your password"
                    if SELF_SERVICE.match(match.group()) and any(
                            SELF_SERVICE_CUE.search(sentence.text) for sentence in sentences(text)
                            if sentence.start <= match.start() < sentence.end):
                        continue  # "you can reset your password yourself in Settings": nobody is asked for it
                    start, end = to_clean(*match.span())
                    if not any(s <= start < e for s, e, _ in spans):
                        spans.append((start, end, "asks for a password, code, PIN or card number"))
        if not spans:
            return PassResult()
        return _fail("asks the customer for secrets: we never do; this is what phishing looks like", sorted(spans))


@register_validator(name="outreach/conduct", data_type="string")
class NoMisconduct(_PolicyCategories):
    """Discrimination, threats, bribery, disparaging competitors, invented regulatory standing (conduct.yaml)."""

    categories, threshold = "conduct", "claims_threshold"


@register_validator(name="outreach/sensitive_topics", data_type="string")
class SensitiveTopics(_PolicyCategories):
    """Health, money troubles, religion, pregnancy, bereavement, immigration, sexuality: a person approves."""

    categories, threshold = "sensitive", "sensitive_threshold"


def _judged(metadata: dict[str, Any], judge: Judge) -> list[tuple[int, int, Judgement]]:
    """Each new sentence of both readings (not word for word in the approved template) with the judge's
    probabilities, in clean-reading coordinates; computed once per review and shared by both judge validators."""
    with metadata.setdefault("lock", threading.Lock()):
        if "judged" in metadata:
            return metadata["judged"]
        known = " ".join((_ctx(metadata).template_text or "").split())
        found: list[tuple[int, int, str]] = []
        for text, to_clean in _readings(metadata["view"].clean.text, metadata):
            for sentence in sentences(text):
                if known and " ".join(sentence.text.split()) in known:
                    continue
                start, end = to_clean(sentence.start, sentence.end)
                if not any(abs(start - s) < 3 and t == sentence.text for s, _, t in found):
                    found.append((start, end, sentence.text))
        vectors = judge.embed([t for _, _, t in found])  # its own fine-tuned encoder, not the shared vectors
        metadata["judged"] = [(s, e, scores) for (s, e, _), scores in zip(found, judge.scores(vectors))]
        return metadata["judged"]


class _JudgeValidator(Validator):
    def __init__(self, judge: Judge | None, on_fail: Any = None, **kwargs: Any) -> None:
        super().__init__(on_fail=on_fail, **kwargs)
        self.judge = judge

    def spans(self, metadata: dict[str, Any], hard: bool) -> list[tuple[int, int, str]]:
        if self.judge is None:
            return []
        data, out = self.judge.data, []
        for start, end, judged in _judged(metadata, self.judge):
            category = self.judge.by_name[judged.category]
            blocks = category.action == "block" and judged.risk >= data.block
            if hard and blocks:
                out.append((start, end, f"{category.name.replace('_', ' ')}: {category.reason} (judged {judged.risk:.0%})"))
            elif not hard and not blocks and judged.risk >= data.review:
                out.append((start, end, f"{category.name.replace('_', ' ')}: {category.reason} (judged {judged.risk:.0%})"))
            elif not hard and not blocks and judged.watched:
                watched = self.judge.by_name[judged.watched]
                out.append((start, end, f"{watched.name.replace('_', ' ')}: {watched.reason} (read as this kind of sentence)"))
        return out


@register_validator(name="outreach/judge", data_type="string")
class LearnedJudge(_JudgeValidator):
    """Sentences the learned judge is confident break a blocking rule (guarantees, no-risk, false approvals,
    false urgency, regulatory or medical claims, disparaging competitors, discrimination, threats, bribery,
    phishing), in wording nobody wrote down."""

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        spans = self.spans(metadata, hard=True)
        if not spans:
            return PassResult()
        return _fail("the judge reads a prohibited claim or conduct: " + "; ".join(sorted({r.split(" (")[0] for _, _, r in spans})),
                     sorted(spans))


@register_validator(name="outreach/judge_watch", data_type="string")
class LearnedJudgeWatch(_JudgeValidator):
    """Sentences the judge finds risky with less confidence, or sensitive: a person decides."""

    def _validate(self, value: Any, metadata: dict[str, Any]) -> ValidationResult:
        spans = self.spans(metadata, hard=False)
        if not spans:
            return PassResult()
        return _fail("the judge finds this risky or sensitive: a reviewer should look", sorted(spans))


def build(policy: ReviewPolicy, matcher_claims: ExampleMatcher | None, matcher_tone: ExampleMatcher | None,
          matcher_sensitive: ExampleMatcher | None = None, judge: Judge | None = None,
          matcher_conduct: ExampleMatcher | None = None) -> dict[str, Validator]:
    """One instance of every validator, by the name policy.yaml uses."""
    return {"pii": NoForeignPII(policy), "claims": NoProhibitedClaims(policy, matcher_claims, judge),
            "disclosures": RequiredDisclosures(policy), "faithfulness": OnlyGivenFacts(),
            "tone": RespectfulTone(policy, matcher_tone, judge), "injection_echo": NoInstructionLeak(policy),
            "channel_limits": ChannelLimits(policy),
            "hidden_text": NoHiddenText(), "disguised_text": NoDisguisedText(), "links": OnlyOurLinks(policy),
            "credentials": NoCredentialRequests(policy),
            "sensitive_topics": SensitiveTopics(policy, matcher_sensitive, judge),
            "judge": LearnedJudge(judge), "judge_watch": LearnedJudgeWatch(judge),
            "conduct": NoMisconduct(policy, matcher_conduct, judge)}


__all__ = ["ReviewContext", "build", "sentences"]
