"""`outreach draft` and `outreach llm ...`: drafting a script, and the local model that drafts it."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import UserError, app, console, errors, friendly, group, services, settings
from app.drafting.tuning import TrainSettings

llm_app = group("llm", "The local drafting model: serve, start, stop, status, train.")


@app.command()
@friendly
def draft(
    customer: Annotated[str | None, typer.Option(help="Customer id (default: the top-ranked recommendation).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Draft the script for a customer's decision in the latest full scoring run: decision, chosen template,
    draft, the guardrails' review and timings. The draft is stored (and queued when it needs approval)."""
    from app.data.tables import Customer
    from app.drafting import service as drafting
    from app.drafting.service import DraftRequest, draft_json
    from app.library.retrieval import best_for_decision
    from app.models.scoring import latest_decision
    from app.review import service as review

    run = services()
    now = run.now()
    started = time.perf_counter()
    with run.read() as session:
        decision = latest_decision(session=session, customer_id=customer)
        record = session.get(Customer, decision.customer_id)
        chosen = best_for_decision(session=session, index=run.index, decision=decision,
                                   lifecycle_stage=record.lifecycle_stage, segment=record.segment)
        retrieval_ms = (time.perf_counter() - started) * 1000
        if chosen is None:
            raise UserError(f"no approved {decision.channel} template fits customer {decision.customer_id}")
        inputs = run.drafter.gather(session=session, request=DraftRequest(
            customer_id=decision.customer_id, channel=decision.channel, template_id=chosen.id,
            product=decision.product, reasons=[r["text"] for r in decision.reasons], decision_id=decision.id), now=now)
        session.expunge(decision)
    with errors.status(f"drafting with {run.drafter.model}"):
        prepared = run.drafter.compose(inputs)
    with run.read() as session:
        assessment = review.assess(session=session, reviewer=run.reviewer, profile=run.profile, draft=prepared, now=now)
    with run.unit_of_work() as session:
        result = drafting.save(session=session, prepared=prepared, now=now)
        review.record(session=session, draft=result, assessment=assessment, actor="cli", now=now)
    checked = assessment.verdicts
    timings = {"retrieval_ms": round(retrieval_ms, 1), "llm_start_s": round(run.drafter.startup_s, 2),
               "draft_ms": result.latency_ms, "review_ms": checked.latency_ms}
    review_json = {"verdict": checked.verdict.value, "routing": checked.routing, "policy_version": checked.policy_version,
                   "findings": [f.model_dump(exclude={"passed"}) for f in checked.failed]}
    if as_json:
        print(json.dumps({**draft_json(result), "review": review_json, "decision": {
            "id": decision.id, "run_id": decision.run_id, "confidence": decision.confidence, "channel": decision.channel,
            "when": decision.slot_local, "product": decision.product, "reasons": [r["text"] for r in decision.reasons],
            "model_version": decision.model_version, "policy_version": decision.policy_version,
            "requires_confirmation": decision.requires_confirmation}, "template_why": chosen.why,
            "timings": timings}, indent=2, ensure_ascii=False, default=str))
        return
    confidence = f"{decision.confidence:.0%}" if decision.confidence is not None else "rule-based"
    console.print(f"[bold]{decision.customer_id}[/bold]: {decision.channel} at {decision.slot_local} about "
                  f"{decision.product} (confidence {confidence}, {decision.method})", highlight=False)
    for reason in decision.reasons:
        console.print(f"  • {reason['text']}", highlight=False)
    console.print(f"template: {chosen.id} v{chosen.version} ({'; '.join(chosen.why)})", highlight=False)
    console.print(f"[bold]{result.label}[/bold]" + (" (cached)" if result.cached else "")
                  + f" · prompt {result.prompt_version}", highlight=False)
    if result.fallback_reason:
        console.print(f"[yellow]template only because:[/yellow] {result.fallback_reason}", highlight=False)
    console.rule()
    if result.subject:
        console.print(f"Subject: {result.subject}\n", highlight=False, markup=False)
    console.print(result.body, highlight=False, markup=False)
    console.rule()
    colour = {"ready": "green", "needs_approval": "yellow", "blocked": "red"}[checked.verdict.value]
    console.print(f"review: [{colour}]{checked.verdict.value}[/{colour}] (policy {checked.policy_version})", highlight=False)
    for why in checked.routing:
        console.print(f"  • {why}", highlight=False, markup=False)
    speed = f", {result.tokens_per_second:.0f} tokens/s" if result.completion_tokens else ""
    console.print(f"retrieval {timings['retrieval_ms']:.0f} ms · model start {timings['llm_start_s']:.1f} s · "
                  f"draft {result.latency_ms:.0f} ms{speed} · review {checked.latency_ms:.0f} ms", highlight=False)


@llm_app.command("serve")
@friendly
def llm_serve() -> None:
    """Run the local model's OpenAI-compatible server on 127.0.0.1 in the foreground (Ctrl-C stops it)."""
    from app.drafting.local import LocalServer

    server = LocalServer.configured(settings())
    console.print(f"starting {server.name} on {server.base_url} (log: {server.log_file})")
    code = server.serve(on_ready=lambda s: console.print(f"ready in {s:.1f} s: {server.base_url}"))
    raise typer.Exit(code)


@llm_app.command("start")
@friendly
def llm_start() -> None:
    """Start the local model server in the background (drafting also does this on demand)."""
    from app.drafting.local import LocalServer

    server = LocalServer.configured(settings())
    seconds = server.ensure_running()
    console.print(f"local model answering on {server.base_url}" + (f" (started in {seconds:.1f} s)" if seconds else ""))


@llm_app.command("stop")
@friendly
def llm_stop() -> None:
    """Stop the local model server this product started."""
    from app.drafting.local import LocalServer

    stopped = LocalServer.configured(settings()).stop()
    console.print("stopped" if stopped else "no local model server was running")


@llm_app.command("status")
@friendly
def llm_status() -> None:
    """Which model drafts, where, and whether it answers."""
    from app.drafting.local import LocalServer
    from app.drafting.service import resolve_mode

    config = settings()
    if config.uses_local_llm:
        server = LocalServer.configured(config)
        state = "answering" if server.is_ready() else "not running (starts on the first draft)"
        console.print(f"local model {server.name} on {server.base_url}: {state}; "
                      f"drafting mode {resolve_mode(config.llm_draft_mode, local=True)}")
    else:
        console.print(f"endpoint {config.llm_base_url}, model {config.llm_model}; "
                      f"drafting mode {resolve_mode(config.llm_draft_mode, local=False)}")


@llm_app.command("train")
@friendly
def llm_train(
    data: Annotated[Path | None, typer.Option(help="The team's openings and customer messages "
                                                   "(default: PROMPTS_DIR/opening.train.yaml).")] = None,
    rewrites: Annotated[Path | None, typer.Option(help="Approved templates and the team's rewrites of them "
                                                       "(default: PROMPTS_DIR/rewrite.train.yaml).")] = None,
    out: Annotated[Path | None, typer.Option(help="Folder for the GGUF and its record (default: DATA_DIR/llm/tuned).")] = None,
    examples: Annotated[int, typer.Option(min=1, help="Opening chats built from the data.")] = TrainSettings.examples,
    rewrite_examples: Annotated[int, typer.Option(min=0, help="Rewrite chats built from the data (0: train the "
                                                              "opening task alone).")] = TrainSettings.rewrite_examples,
    epochs: Annotated[int, typer.Option(min=1)] = TrainSettings.epochs,
    rank: Annotated[int, typer.Option(min=1, max=256, help="LoRA rank.")] = TrainSettings.rank,
    learning_rate: Annotated[float, typer.Option(min=1e-6, max=1e-1)] = TrainSettings.learning_rate,
    eval_cases: Annotated[int, typer.Option(min=0, help="Held-out opening situations to compare base and tuned "
                                                        "model on.")] = TrainSettings.eval_cases,
    rewrite_eval_cases: Annotated[int, typer.Option(min=0, help="Held-out rewrite situations (templates never "
                                                                "trained on).")] = TrainSettings.rewrite_eval_cases,
    seed: Annotated[int, typer.Option()] = TrainSettings.seed,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
) -> None:
    """Fine-tune the local model (LoRA, on CPU) for the opening sentence and for rewriting an approved template,
    and write it as a GGUF; nothing is downloaded. Drafting then uses it for a task when it beat the shipped
    model on that task's held-out evaluation (or when LLM_LOCAL_MODEL names it)."""
    from app.drafting.local import model_path
    from app.drafting.service import resolve_mode
    from app.drafting.tuning import DATA_FILE, earned_its_place, train
    from app.library.index import default_embedder

    config = settings()
    tuning = TrainSettings(examples=examples, rewrite_examples=rewrite_examples, epochs=epochs, rank=rank,
                           learning_rate=learning_rate, eval_cases=eval_cases, rewrite_eval_cases=rewrite_eval_cases,
                           seed=seed, threads=config.llm_local_threads)
    record = train(base=model_path(), data_file=data or config.prompts_dir / DATA_FILE, rewrites_file=rewrites,
                   prompts_dir=config.prompts_dir, out_dir=out or config.tuned_llm_dir, settings=tuning,
                   embedder=default_embedder(config.embedding_model),
                   on_progress=lambda message: errors.print(message, highlight=False))
    if as_json:
        print(json.dumps(record))
        return
    console.print(f"trained {record['name']} on {record['train_chats']} chats ({', '.join(record['tasks'])}) in "
                  f"{record['train_seconds']:.0f} s (loss {record['first_loss']:.3f} -> {record['last_loss']:.3f})",
                  highlight=False)
    _print_evaluation(record)
    task = resolve_mode(config.llm_draft_mode, local=True)
    if not earned_its_place(record, task):
        console.print(f"it did not beat the shipped model at the {task} task drafts use, on held-out situations: "
                      f"drafting keeps the shipped one (LLM_LOCAL_MODEL={record['gguf']} would use it anyway)",
                      highlight=False)
    elif out is None and config.llm_local_model is None:
        console.print(f"it beat the shipped model at the {task} task on held-out situations: drafting now uses it "
                      f"({record['gguf']})", highlight=False)
    else:
        console.print(f"it beat the shipped model at the {task} task on held-out situations; to draft with it: "
                      f"LLM_LOCAL_MODEL={record['gguf']}", highlight=False)


@llm_app.command("evaluate")
@friendly
def llm_evaluate(
    model: Annotated[Path | None, typer.Option(help="The GGUF to compare with the shipped model (default: the tuned "
                                                    "model drafting uses).")] = None,
    eval_cases: Annotated[int, typer.Option(min=0, help="Held-out opening situations.")] = TrainSettings.eval_cases,
    rewrite_eval_cases: Annotated[int, typer.Option(min=0, help="Held-out rewrite situations.")
                                  ] = TrainSettings.rewrite_eval_cases,
    seed: Annotated[int, typer.Option()] = TrainSettings.seed,
    as_json: Annotated[bool, typer.Option("--json", help="Print the evaluation as JSON.")] = False,
) -> None:
    """Compare a model with the shipped one on the situations `outreach llm train` holds out (from today's
    PROMPTS_DIR data: the same files the model was trained on, or the held-out part is not held out), both
    tasks; prints, changes no record."""
    from app.drafting.local import LocalServer, model_path
    from app.drafting.tuning import DATA_FILE, compare, cosine, held_out_sets, inputs
    from app.library.index import default_embedder

    config = settings()
    chosen = model or LocalServer.configured(config).model_file
    if chosen is None:
        raise UserError("--model: no tuned model to evaluate; run `outreach llm train` or name a GGUF")
    if not chosen.is_file() or chosen.suffix != ".gguf":
        raise UserError(f"--model: {chosen} is not a .gguf file")
    tuning = TrainSettings(eval_cases=eval_cases, rewrite_eval_cases=rewrite_eval_cases, seed=seed,
                           threads=config.llm_local_threads)
    data, prompts = inputs(config.prompts_dir / DATA_FILE, config.prompts_dir, tuning)
    evaluation = compare(model_path(), chosen, held_out_sets(data, prompts, tuning),
                         cosine(default_embedder(config.embedding_model)), tuning.threads,
                         on_progress=lambda message: errors.print(message, highlight=False))
    if as_json:
        print(json.dumps({"model": str(chosen), "evaluation": evaluation}))
        return
    _print_evaluation({"evaluation": evaluation})


def _print_evaluation(record: dict) -> None:
    from app.drafting.tuning import evaluation_of

    for task in ("opening", "rewrite"):
        for label in ("base", "tuned"):
            figures = evaluation_of(record, task).get(label)
            if figures:
                console.print(f"  {task:8s}{label:6s}ready {figures['ready_share']:.0%} · usable "
                              f"{figures['usable_share']:.0%} · echoed the customer {figures['echoed_customer']} · "
                              f"unsupported claims {figures['unsupported_claims']} · {figures['tokens_per_s']:.0f} "
                              "tokens/s", highlight=False)
