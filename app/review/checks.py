"""Running the validators on a text and routing the result: ready, needs approval, or blocked.

Fail closed: a validator that raises or runs past its time budget is a finding of its own, and the
text is blocked with the reason shown.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from enum import StrEnum
from functools import cached_property
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field

from app.library.index import Embedder
from app.review import validators
from app.review.policy import ReviewPolicy
from app.review import normalize
from app.review.injection import InjectionDetector
from app.review.judge import Judge, JudgeData
from app.review.semantic import ExampleMatcher, SentenceVectors
from app.review.tuned import RECIPE
from app.review.validators import ReviewContext


class Verdict(StrEnum):
    READY = "ready"
    NEEDS_APPROVAL = "needs_approval"
    BLOCKED = "blocked"


class Span(BaseModel):
    start: int
    end: int
    text: str
    reason: str


class Finding(BaseModel):
    validator: str
    passed: bool
    severity: str  # hard | soft
    reason: str | None = None
    spans: list[Span] = Field(default_factory=list)
    error: bool = False  # the validator itself failed: fail closed


class Review(BaseModel):
    verdict: Verdict
    findings: list[Finding]
    routing: list[str]  # why this verdict, in words
    policy_version: str
    latency_ms: float

    @property
    def failed(self) -> list[Finding]:
        return [f for f in self.findings if not f.passed]


class Reviewer:
    """The configured validators; the embedding model for paraphrases loads on first use."""

    def __init__(self, policy: ReviewPolicy, embedder: Embedder | None, judge: Judge | None = None,
                 injection: InjectionDetector | None = None) -> None:
        self.policy = policy
        self.embedder = embedder
        self.judge = judge
        self.injection = injection
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="validator")

    @classmethod
    def from_folder(cls, folder: Path, embedder: Embedder | None, cache_dir: Path | None = None) -> Reviewer:
        """The policy of `folder`; with an embedding model, also the paraphrase matchers, the learned judge
        (`judge.yaml`) and the injection detector, whose fine-tuned encoders are kept in `cache_dir`."""
        judge = injection = None
        if embedder is not None and (folder / "judge.yaml").is_file():
            judge = Judge(JudgeData.load(folder / "judge.yaml"), embedder, cache_dir)
        if embedder is not None:
            injection = InjectionDetector.from_folder(folder, embedder, cache_dir)
        return cls(ReviewPolicy.load(folder), embedder, judge, injection)

    @cached_property
    def version(self) -> str:
        """What every review records: the policy files' version and hash, and the recipe that trained the learned
        parts on them (the code, not the files, decides how the judge and the injection detector are trained)."""
        return f"{self.policy.version}+{RECIPE}" if self.judge is not None or self.injection is not None \
            else self.policy.version

    @cached_property
    def matchers(self) -> list[ExampleMatcher]:
        """Paraphrase matchers for the claims and the tone examples (none without an embedding model)."""
        if self.embedder is None:
            return []
        return [ExampleMatcher(self.embedder, self.policy.claims), ExampleMatcher(self.embedder, self.policy.tone),
                ExampleMatcher(self.embedder, self.policy.sensitive), ExampleMatcher(self.embedder, self.policy.conduct)]

    @cached_property
    def validators(self) -> dict[str, Any]:
        claims, tone, sensitive, conduct = self.matchers or (None, None, None, None)
        return validators.build(self.policy, claims, tone, sensitive, self.judge, conduct)

    def warm(self) -> None:
        """Load the embedding model and embed the policy examples now, outside any validator's time budget."""
        for matcher in self.matchers:
            matcher.examples()
        if self.judge is not None:
            self.judge.model()
        if self.injection is not None:
            self.injection.model()

    def check(self, text: str, context: ReviewContext, *, sensitive: list[str] | None = None,
              confidence: float | None = None) -> Review:
        """Every validator on `text`, then routing. `sensitive` names why the customer or template is
        sensitive (each one needs approval); `confidence` is the recommendation's."""
        started = time.perf_counter()
        try:
            self.warm()
        except Exception as exc:  # noqa: BLE001 - a model that cannot load or train fails closed, like a validator
            finding = Finding(validator="models", passed=False, severity="hard", error=True,
                              reason=f"the guardrails' models could not load ({type(exc).__name__}: {exc}): the text is held")
            return Review(verdict=Verdict.BLOCKED, findings=[finding], routing=[f"models: {finding.reason}"],
                          policy_version=self.version, latency_ms=round((time.perf_counter() - started) * 1000, 2))
        budget = float(self.policy.routing.get("validator_timeout_s", 2.0))
        seen = normalize.view(text)
        # One review's shared state: the readings, the sentence embeddings, and a lock for what validators compute
        # once for each other (the judge's scores).
        metadata = {"context": context.folded(), "view": seen, "lock": threading.Lock(),
                    "vectors": SentenceVectors(self.embedder) if self.embedder is not None else None}
        findings = []
        futures = {name: self._pool.submit(v.validate, seen.clean.text, metadata) for name, v in self.validators.items()}
        deadline = time.perf_counter() + budget
        for name, future in futures.items():
            severity = self.policy.severity.get(name, "hard")
            try:
                result = future.result(timeout=max(0.0, deadline - time.perf_counter()))
            except FutureTimeout:
                findings.append(Finding(validator=name, passed=False, severity="hard", error=True,
                                        reason=f"did not finish within {budget:g} s: the text is held until it does"))
                continue
            except Exception as exc:  # noqa: BLE001 - any failure of a validator fails closed
                findings.append(Finding(validator=name, passed=False, severity="hard", error=True,
                                        reason=f"could not run ({type(exc).__name__}: {exc}): the text is held"))
                continue
            if result.outcome == "pass":
                findings.append(Finding(validator=name, passed=True, severity=severity))
            else:
                spans = []
                for s in result.error_spans or []:  # validators report spans in the clean reading
                    start, end = seen.clean.span(s.start, s.end) if s.end > s.start else (
                        seen.clean.span(s.start, s.start + 1)[0],) * 2
                    spans.append(Span(start=start, end=end, text=text[start:end], reason=s.reason))
                findings.append(Finding(validator=name, passed=False, severity=severity, reason=result.error_message,
                                        spans=spans))
        verdict, routing = self._route(findings, sensitive or [], confidence)
        return Review(verdict=verdict, findings=findings, routing=routing, policy_version=self.version,
                      latency_ms=round((time.perf_counter() - started) * 1000, 2))

    def _route(self, findings: list[Finding], sensitive: list[str], confidence: float | None
               ) -> tuple[Verdict, list[str]]:
        hard = [f for f in findings if not f.passed and (f.severity == "hard" or f.error)]
        if hard:
            return Verdict.BLOCKED, [f"{f.validator}: {f.reason}" for f in hard]
        reasons = [f"{f.validator}: {f.reason}" for f in findings if not f.passed]
        reasons += sensitive
        floor = float(self.policy.routing.get("min_confidence", 0.0))
        if confidence is not None and confidence < floor:
            reasons.append(f"model confidence {confidence:.0%} is below {floor:.0%}")
        return (Verdict.NEEDS_APPROVAL, reasons) if reasons else (Verdict.READY, [])

    def sensitivity(self, *, customer_sensitive: bool, industry: str | None, template_sensitive: bool) -> list[str]:
        """Why a recommendation needs approval whatever the text says."""
        out = []
        if customer_sensitive:
            out.append("the customer is marked sensitive")
        if industry and industry.lower() in {i.lower() for i in self.policy.routing.get("sensitive_industries", [])}:
            out.append(f"the customer's industry ({industry}) is sensitive")
        if template_sensitive:
            out.append("the template is marked sensitive")
        return out
