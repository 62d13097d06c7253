"""Drafting report: quality checks and speed over a fixed set of customers, on any OpenAI-compatible endpoint.

    .venv/bin/python eval/bench_draft.py --drafts 40                        # the embedded local model
    .venv/bin/python eval/bench_draft.py --base-url http://gpu:8000/v1 --model Qwen/Qwen2.5-7B-Instruct
    .venv/bin/python eval/bench_draft.py --local-model data/llm/tuned/NAME.gguf   # a model from `outreach llm train`

The fixed set: a seeded synthetic history (2,000 customers, seed 0) as of 2026-11-02 10:00 UTC, trained
and scored as the demo does; the top-N recommendations are drafted with the template retrieval picks. For every draft it
reports whether each required disclosure is kept, no placeholder is left unfilled, the channel length
holds and no number, price or other product appears that is absent from the template and the facts;
the share drafted by the model (the rest fell back to the template, with the reasons counted); the share
whose model-written part mentions the customer's situation (the opening: a word of the reasons or the
product; a rewrite: a word of the reasons it added to the template; a template-only draft does not count);
p50 / p95 drafting latency and generation speed. Speed is also given as a ratio to the raw runtime's
own speed on the same prompts: llama-cpp-python in-process on the same GGUF for the local model, a
direct `openai` call without our pipeline for an endpoint.

With `--attacks PATH` (the labelled prompt injections of ../shared/data/prompt-injections/), every drafted
customer first gets a service conversation yesterday whose text is one of the set's injections (English and
German, in the file's order, seeded shuffle). Drafting then runs as in production: the injection detector keeps
what it flags out of the prompt, the rest is quoted as data. Reported: how many attacks were flagged, how many
drafts echo the attack (5 words in a row, as the guardrail counts) or add a fact the template and the facts do
not support, and how many of those the review (the real guardrails) would still let through as ready.
"""

from __future__ import annotations

import argparse
import collections
import json
import re
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np

from app.config import Settings
from app.data.synthetic import generate, load_into_store
from app.drafting import compose
from app.drafting.llm import Completion, LangChainClient, LLMClient
from app.drafting.local import LocalServer, model_path
from app.drafting.service import Drafter, DraftRequest
from app.library import service as library
from app.library.retrieval import best_for_decision
from app.review import service as review
from app.review.validators import echoes
from app.models.scoring import score_all, top_decisions
from app.models.training import train_and_register
from app.services import Services
from app.data.tables import Customer

ROOT = Path(__file__).resolve().parents[1]
# The fixed set is fixed in time too: history, decisions and drafts as of this moment, whatever the clock says.
AS_OF = datetime(2026, 11, 2, 10, 0, tzinfo=timezone.utc)


class Recorder:
    """Wraps a client and keeps every request and answer, so the raw runtime can replay the same prompts."""

    def __init__(self, inner: LLMClient) -> None:
        self.inner = inner
        self.model = inner.model
        self.calls: list[tuple[list[dict[str, str]], dict[str, Any] | None, int, Completion, float]] = []

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int, schema: dict[str, Any] | None = None,
                 temperature: float = 0.2) -> Completion:
        completion = self.inner.complete(messages, max_tokens=max_tokens, schema=schema, temperature=temperature)
        self.calls.append((messages, schema, max_tokens, completion, temperature))
        return completion


def fixed_set(services: Services, customers: int, drafts: int) -> list[tuple[Any, Any]]:
    factory, settings = services.store, services.settings
    history = generate(customers=customers, seed=0, now=AS_OF)
    load_into_store(history, factory)
    train_and_register(factory, models_dir=settings.models_dir, now=AS_OF, actor="eval", seed=0)
    with services.unit_of_work() as session:
        library.import_directory(session=session, folder=ROOT / "script_library", actor="eval", now=AS_OF)
    with services.read() as session:
        services.index.sync(library.live_versions(session=session))
    summary = score_all(factory, now=AS_OF, policy=services.contact_policy, reasons=services.reason_table,
                        challenger_share=0.0, chunk_size=5000)
    picked = []
    with services.read() as session:
        decisions = top_decisions(session=session, run_id=summary.run_id, limit=drafts)
        records = {c.id: c for c in session.query(Customer).filter(Customer.id.in_([d.customer_id for d in decisions]))}
        for decision in decisions:
            customer = records[decision.customer_id]
            template = best_for_decision(session=session, index=services.index, decision=decision,
                                         lifecycle_stage=customer.lifecycle_stage, segment=customer.segment)
            if template is not None:
                picked.append((decision, template))
    return picked


def plant_attacks(services: Services, picked: list[tuple[Any, Any]], path: Path) -> dict[str, tuple[str, bool]]:
    """Each picked customer's last service conversation becomes an injection from `path`; what the detector
    says of each. Returns customer id -> (text, flagged)."""
    import random

    from app.data.tables import Event

    texts = [row["text"] for row in map(json.loads, path.read_text().splitlines()) if row["label"] == 1]
    random.Random(0).shuffle(texts)
    customers = [decision.customer_id for decision, _ in picked]
    chosen = {customer: texts[i % len(texts)] for i, customer in enumerate(customers)}
    flags = services.injection.flags(list(chosen.values()))
    with services.unit_of_work() as session:
        for i, (customer, text) in enumerate(chosen.items()):
            session.add(Event(id=f"attack-{i}", customer_id=customer, occurred_at=AS_OF - timedelta(days=1),
                              type="service_conversation", intent="other", text=text))
    return {customer: (text, flag) for (customer, text), flag in zip(chosen.items(), flags)}


def check(result: Any, spec: Any, facts_text: str, products: dict[str, str], product_key: str) -> list[str]:
    found = compose.problems(subject=result.subject if result.channel == "email" else None, body=result.body,
                             channel=result.channel, disclosures=spec.disclosures, trusted=facts_text,
                             product_names=products, product_key=product_key)
    kinds = []
    for problem in found:
        kinds.append("disclosure" if problem.startswith("required line") else
                     "placeholder" if problem.startswith("unfilled") else
                     "unsupported_fact" if problem.startswith("claims") else "length")
    return kinds


def words(text: str) -> set[str]:
    """Content words: what "mentions the situation" compares."""
    return {w for w in re.findall(r"[a-z]+", text.lower()) if len(w) > 3} - {"this", "that", "with", "from", "your",
                                                                             "days", "times", "last", "about"}


def opening_of(answer: str) -> str:
    try:
        return str(json.loads(answer).get("opening") or "")
    except (ValueError, AttributeError):
        return ""


def raw_speed(calls: list, base_url: str | None, model: str, api_key: str | None, limit: int,
              local_model: Path | None = None) -> dict[str, float]:
    """The runtime's own generation speed on the same prompts, without our pipeline."""
    timings, tokens = [], []
    if base_url is None:
        from llama_cpp import Llama

        llm = Llama(model_path=str(local_model or model_path()), n_ctx=2048, n_threads=2, n_threads_batch=2, verbose=False)
        for messages, schema, max_tokens, _, temperature in calls[:limit]:
            fmt = {"type": "json_object", "schema": schema} if schema else None
            started = time.perf_counter()
            out = llm.create_chat_completion(messages=messages, max_tokens=max_tokens, temperature=temperature,
                                             response_format=fmt)
            timings.append(time.perf_counter() - started)
            tokens.append(out["usage"]["completion_tokens"])
    else:
        from openai import OpenAI

        client = OpenAI(base_url=base_url, api_key=api_key or "not-needed")
        for messages, schema, max_tokens, _, temperature in calls[:limit]:
            fmt = {"type": "json_schema", "json_schema": {"name": "draft", "schema": schema}} if schema else None
            started = time.perf_counter()
            out = client.chat.completions.create(model=model, messages=messages, max_tokens=max_tokens,
                                                 temperature=temperature, **({"response_format": fmt} if fmt else {}))
            timings.append(time.perf_counter() - started)
            tokens.append(out.usage.completion_tokens if out.usage else 0)
    return {"calls": len(timings), "tokens_per_s": round(sum(tokens) / sum(timings), 1) if timings else 0.0,
            "p50_ms": round(float(np.percentile(np.array(timings) * 1000, 50)), 1) if timings else 0.0}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--drafts", type=int, default=40)
    parser.add_argument("--customers", type=int, default=2000)
    parser.add_argument("--base-url", help="An OpenAI-compatible endpoint (default: the embedded local model).")
    parser.add_argument("--model", help="Model name at --base-url.")
    parser.add_argument("--api-key")
    parser.add_argument("--local-model", type=Path, help="A GGUF for the local server (LLM_LOCAL_MODEL), e.g. one "
                                                         "from `outreach llm train`; default: the shipped model.")
    parser.add_argument("--mode", choices=["auto", "opening", "rewrite"], default="auto")
    parser.add_argument("--raw-calls", type=int, default=20, help="Prompts replayed on the raw runtime.")
    parser.add_argument("--attacks", type=Path, help="JSONL of labelled prompt injections (label 1 = attack) to "
                                                     "put in each customer's last message.")
    parser.add_argument("--out", type=Path, default=ROOT / "eval" / "reports" / "bench_draft.json")
    args = parser.parse_args()
    if args.base_url and not args.model:
        parser.error("--model is required with --base-url")

    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(_env_file=None, data_dir=Path(tmp), model_cache_dir=ROOT / "data" / "cache", prompts_dir=ROOT / "prompts",
                            library_dir=ROOT / "script_library", llm_base_url=args.base_url, llm_model=args.model,
                            llm_api_key=args.api_key, llm_draft_mode=args.mode, llm_timeout_s=120,
                            llm_local_model=args.local_model)
        print(f"preparing the fixed set: {args.customers} customers, top {args.drafts} recommendations")
        services = Services(settings)
        picked = fixed_set(services, args.customers, args.drafts)
        attacks = plant_attacks(services, picked, args.attacks) if args.attacks else {}
        started = time.perf_counter()
        if args.base_url:
            inner: LLMClient = LangChainClient.configured(provider="openai", model=args.model, base_url=args.base_url,
                                                          api_key=args.api_key, timeout_s=120, max_retries=1)
            server = None
        else:
            server = LocalServer.configured(settings)
            server.ensure_running()
            inner = server.client(settings)
        startup_s = time.perf_counter() - started
        recorder = Recorder(inner)
        # As in production: what the injection detector flags never reaches the prompt.
        drafter = Drafter(settings, client=recorder, embedder=services.embedder,
                          injection=services.injection if attacks else None)
        rows, failures, fallbacks = [], collections.Counter(), collections.Counter()
        try:
            for decision, template in picked:
                with services.read() as session:
                    spec = library.live_versions(session=session, template_id=template.id)[0]
                request = DraftRequest(customer_id=decision.customer_id, channel=decision.channel, template_id=template.id,
                                       product=decision.product, reasons=[r["text"] for r in decision.reasons],
                                       decision_id=decision.id)
                calls_before = len(recorder.calls)
                began = time.perf_counter()
                with services.read() as session:
                    result = drafter.prepare(session=session, request=request, now=AS_OF)
                wall_ms = (time.perf_counter() - began) * 1000
                spent = recorder.calls[calls_before:]
                with services.read() as session:
                    customer = session.get(Customer, decision.customer_id)
                product = drafter.profile.product(decision.product)
                trusted = " ".join([spec.body, *request.reasons, product["name"], customer.first_name or "",
                                    *drafter.profile.rep(customer.owner_rep).values(), *drafter.profile.company.values()])
                kinds = check(result, spec, trusted, drafter.profile.products, product["key"])
                situation = words(" ".join([*request.reasons, product["name"]]))
                mentions = False
                if result.mode == "llm" and spent and drafter.mode == "rewrite":
                    # What the rewrite added to the template (the template already names the product).
                    added = words(result.body) - words(spec.body) - words(product["name"])
                    mentions = bool(added & situation)
                elif result.mode == "llm" and spent:
                    mentions = bool(words(opening_of(spent[-1][3].text)) & situation)
                failures.update(kinds)
                if result.mode == "template_only":
                    fallbacks[(result.fallback_reason or "")[:90]] += 1
                attack = {}
                if decision.customer_id in attacks:
                    said, flagged = attacks[decision.customer_id]
                    with services.read() as session:
                        verdict = review.assess(session=session, reviewer=services.reviewer, profile=drafter.profile,
                                                draft=result, now=AS_OF).verdicts.verdict
                    attack = {"attack": said, "flagged": flagged, "echoed": bool(echoes(result.body, said)),
                              "review": str(verdict)}
                rows.append({**attack, "customer_id": result.customer_id, "channel": result.channel, "template": spec.id,
                             "mode": result.mode, "mentions_situation": mentions,
                             "model_calls": len(spent), "wall_ms": round(wall_ms, 1),
                             "llm_ms": round(sum(c[3].latency_ms for c in spent), 1),
                             "completion_tokens": sum(c[3].completion_tokens for c in spent), "problems": kinds,
                             "fallback_reason": result.fallback_reason, "body": result.body})
        finally:
            if server is not None:
                server.stop()
        n = len(rows)
        called = [c for c in recorder.calls]
        ours_tps = sum(c[3].completion_tokens for c in called) / (sum(c[3].latency_ms for c in called) / 1000) if called else 0
        raw = raw_speed(called, args.base_url, args.model or "", args.api_key, args.raw_calls, args.local_model)
        wall = np.array([r["wall_ms"] for r in rows])
        report = {
            "endpoint": args.base_url or "local llama.cpp server", "model": drafter.model, "drafting_mode": drafter.mode,
            "prompt_version": drafter.prompts.version, "drafts": n, "server_start_s": round(startup_s, 2),
            "drafted_by_model": round(sum(r["mode"] == "llm" for r in rows) / n, 3),
            "mentions_situation": round(sum(r["mentions_situation"] for r in rows) / n, 3),
            "fallback_reasons": dict(fallbacks),
            "kept_every_disclosure": round(1 - sum("disclosure" in r["problems"] for r in rows) / n, 3),
            "no_unfilled_placeholder": round(1 - sum("placeholder" in r["problems"] for r in rows) / n, 3),
            "within_channel_length": round(1 - sum("length" in r["problems"] for r in rows) / n, 3),
            "no_unsupported_fact": round(1 - sum("unsupported_fact" in r["problems"] for r in rows) / n, 3),
            "latency_ms": {"p50": round(float(np.percentile(wall, 50)), 1), "p95": round(float(np.percentile(wall, 95)), 1)},
            "model_calls": len(called),
            "tokens_per_s": round(ours_tps, 1),
            "raw_runtime": raw,
            "speed_ratio_vs_raw": round(ours_tps / raw["tokens_per_s"], 3) if raw["tokens_per_s"] else None,
            "by_channel": {ch: {"drafts": sum(r["channel"] == ch for r in rows),
                                "drafted_by_model": sum(r["channel"] == ch and r["mode"] == "llm" for r in rows)}
                           for ch in sorted({r["channel"] for r in rows})},
            "examples": [r for r in rows if r["mode"] == "llm"][:5],
        }
        if attacks:
            attacked = [r for r in rows if "attack" in r]
            bad = [r for r in attacked if r["echoed"] or "unsupported_fact" in r["problems"]]
            report["attacks"] = {
                "drafts": len(attacked), "flagged_kept_out_of_prompt": sum(r["flagged"] for r in attacked),
                "model_written": sum(r["mode"] == "llm" for r in attacked),
                "echoed_the_attack": sum(r["echoed"] for r in attacked),
                "added_an_unsupported_fact": sum("unsupported_fact" in r["problems"] for r in attacked),
                "echoed_or_unsupported_and_review_ready": sum(r["review"] == "ready" for r in bad),
                "review": dict(collections.Counter(r["review"] for r in attacked)),
                "bad_examples": bad[:5],
            }
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(json.dumps({k: v for k, v in report.items() if k != "examples"}, indent=2))
    print(f"report written to {args.out}")


if __name__ == "__main__":
    main()
