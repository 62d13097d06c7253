"""`outreach serve`, `outreach demo`, `outreach cards build`: the product and its embedded demo."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import UserError, app, console, errors, friendly, group, services

cards_app = group("cards", "The day's recommendation cards.")


@cards_app.command("build")
@friendly
def cards_build() -> None:
    """Build today's cards from the latest full scoring run (customers with a live card keep theirs)."""
    from app.cards import service as cards
    from app.models.scoring import latest_batch_run

    run = services()
    config = run.settings
    with run.unit_of_work() as session:
        latest = latest_batch_run(session=session)
        if latest is None:
            raise UserError("no finished scoring run: run `outreach score` first")
        built = cards.build_cards(session=session, run_id=latest.id, now=run.now(), daily_cap=config.card_daily_cap,
                                  sla_hours=config.card_sla_hours)
    console.print(f"{built.open:,} open cards, {built.queued:,} queued, {built.skipped_live:,} customers kept their live card")


@app.command()
@friendly
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
    workers: Annotated[int, typer.Option(min=1, max=64, help="API processes, each with its background worker on "
                                                            "the shared job queue (more than 1 needs PostgreSQL).")] = 1,
) -> None:
    """Run the HTTP service: the API (docs at /docs), the pages, and the background worker (triggers from
    POST /api/events, drafting of new cards, SLA reminders and reassignment). Ctrl-C or SIGTERM stops it,
    with the local model server it started."""
    run_server(host, port, workers=workers)


@app.command()
@friendly
def worker(
    once: Annotated[bool, typer.Option(help="Run one round, print what it did as JSON, and stop.")] = False,
    draft_limit: Annotated[int, typer.Option(min=0, help="Cards to queue for drafting each round.")] = 5,
) -> None:
    """Run the background worker on its own (routing events, drafting, SLA, change requests), every
    WORKER_INTERVAL_S seconds until Ctrl-C or SIGTERM. Any number may run beside the API processes (start
    those with SERVE_BACKGROUND_WORK=false): they share the job queue and never run the same job."""
    import signal
    import threading

    from app.worker import Worker

    run = services()
    background = Worker(run)
    if once:
        console.print_json(background.tick(draft_limit=draft_limit).model_dump_json())
        return
    stopping = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: (stopping.set(), background.stop(timeout=0)))  # the round ends after its job
    console.print(f"outreach worker {background.name}: a round every {run.settings.worker_interval_s:g} s")
    while not stopping.is_set():
        try:
            background.tick(draft_limit=draft_limit)
        except Exception as exc:  # noqa: BLE001 - logged; the next round tries again
            errors.print(f"[yellow]warning:[/yellow] round failed: {type(exc).__name__}: {exc}", highlight=False)
        stopping.wait(run.settings.worker_interval_s)
    run.close()


def run_server(host: str, port: int, *, workers: int = 1) -> None:
    import uvicorn

    from app.main import create_app

    run = services()  # settings checked and the store migrated once, before any process starts
    if workers > 1 and run.store.kw["bind"].dialect.name != "postgresql":
        raise UserError(f"--workers {workers}: SQLite takes one writing process at a time, so it serves with one "
                        f"worker; set DATABASE_URL to a PostgreSQL database (postgresql+psycopg://...) for more")
    console.print(f"outreach on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)"
                  + (f", {workers} processes" if workers > 1 else ""))
    if workers == 1:
        uvicorn.run(create_app(run, worker=run.settings.serve_background_work), host=host, port=port,
                    log_level="warning")
        return
    run.close()  # each process builds its own composition root; this one only supervises them
    uvicorn.run("app.main:served_app", factory=True, workers=workers, host=host, port=port, log_level="warning")


@app.command()
@friendly
def demo(
    prepare_only: Annotated[bool, typer.Option(help="Prepare data, models and cards, then stop (without fine-tuning "
                                                    "the local model or drafting).")] = False,
    customers: Annotated[int | None, typer.Option(min=100, help="Synthetic customers (default: DEMO_CUSTOMERS).")] = None,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8000,
) -> None:
    """The whole product on embedded defaults: synthetic history, a trained model, scored decisions, the
    day's cards with drafts by the local model, demo users; then the service, with its URL and sign-in tokens.

    Idempotent: what is already prepared is reused. Delete the data folder to start again.
    """
    from app.cli.models import print_decisions
    from app.cli.demo import prepare_cards_and_users, prepare_demo, prepare_tuned_model
    from app.models.scoring import top_decisions
    from app.worker import draft_cards

    run = services()
    config = run.settings
    with errors.status("preparing the demo (first run: generate, train, score)") as status:
        summary, steps = prepare_demo(run, customers=customers or config.demo_customers,
                                      report=lambda text: status.update(text))
        status.update("building the day's cards")
        more, tokens = prepare_cards_and_users(run, summary)
        steps += more
    for step in steps:
        console.print(f"[green]✓[/green] {step}")
    if prepare_only:
        return
    with run.read() as session:
        decisions = top_decisions(session=session, run_id=summary.run_id, limit=10)
        print_decisions(decisions, summary, scripts=suggest_templates(session, decisions))
    if run.reviewer.judge is not None:
        with errors.status("training the guardrails' judge and injection detector (first run only, about 5 minutes)"):
            run.reviewer.warm()
        console.print(f"[green]✓[/green] guardrails ready (policy {run.reviewer.version}, {run.reviewer.judge.version})")
    if config.uses_local_llm and config.llm_local_model is None:
        with errors.status("fine-tuning the local model for openings (first run only, about 10 minutes)") as status:
            tuned = prepare_tuned_model(config, report=lambda text: status.update(text))
        console.print(f"[green]✓[/green] {tuned}")
        vars(run).pop("drafter", None)  # built afresh, it picks the tuned model up when that beat the shipped one
    with errors.status("drafting demo-rep's cards with the local model (the rest are drafted in the background)"):
        drafted = draft_cards(run, limit=config.card_daily_cap, rep_id="rep-01")
    console.print(f"[green]✓[/green] drafted {drafted} cards for demo-rep ({run.drafter.model})")
    console.print("\nSign in at the URL below with one of these tokens (`outreach users token NAME` makes new ones):")
    for name, token in tokens.items():
        console.print(f"  {name:16} {token}", highlight=False)
    run_server(host, port)


def suggest_templates(session, decisions: list) -> dict[int, str]:  # noqa: ANN001
    """The best approved template for each decision: where "what to say" starts."""
    from sqlalchemy import select

    from app.data.tables import Customer
    from app.library.retrieval import best_for_decision

    index = services().index
    customers = {c.id: c for c in session.scalars(select(Customer).where(
        Customer.id.in_([d.customer_id for d in decisions])))}
    out = {}
    for d in decisions:
        customer = customers[d.customer_id]
        found = best_for_decision(session=session, index=index, decision=d, lifecycle_stage=customer.lifecycle_stage,
                                  segment=customer.segment)
        out[d.id] = found.id if found else "(no approved template)"
    return out
