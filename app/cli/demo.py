"""The embedded demo: everything `outreach demo` prepares, each step skipped when already done."""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import func, select

from app.cards import service as cards
from app.cli.simulation import month_start, simulate
from app.data.synthetic import default_now, generate, load_into_store
from app.data.tables import Customer
from app.library import service as library
from app.library.tables import Template
from app.models import registry
from app.models.scoring import ScoreSummary, latest_batch_run, score_all
from app.models.training import train_and_register
from app.config import Settings
from app.services import Services
from app.users.service import ensure_demo_users


def _prepare_library(services: Services, report: Callable[[str], None]) -> str:
    """The starter template library in the store and in the vector index."""
    config = services.settings
    imported = ""
    with services.unit_of_work() as session:
        if not session.scalar(select(func.count()).select_from(Template)):
            report(f"importing the template library from {config.library_dir}")
            result = library.import_directory(session=session, folder=config.library_dir, actor="demo",
                                              now=services.now())
            if result.errors:
                raise library.LibraryError("the starter library has invalid files: " + "; ".join(result.errors))
            imported = f"imported {len(result.created)} templates; "
    report("indexing approved templates")
    with services.read() as session:
        live = library.live_versions(session=session)
    synced = services.index.sync(live)
    return (f"{imported}template index holds {synced.added + synced.updated + synced.unchanged} approved templates "
            f"({synced.added} added now)")


def prepare_demo(services: Services, *, customers: int, report: Callable[[str], None] = lambda _: None
                 ) -> tuple[ScoreSummary, list[str]]:
    """Generate, train, import the library and score as needed; returns the latest scoring run and what was done."""
    config, factory = services.settings, services.store
    steps: list[str] = []
    with services.read() as session:
        has_customers = bool(session.scalar(select(func.count()).select_from(Customer)))
    # A fresh demo lives its last weeks first: the history ends where the simulated weeks begin.
    weeks = 0 if has_customers else config.demo_weeks
    start = month_start(services.now(), weeks) if weeks else services.now()
    if not has_customers:
        report(f"generating a synthetic history of {customers:,} customers")
        history = generate(customers=customers, seed=config.seed, now=default_now(start))
        config.data_dir.mkdir(parents=True, exist_ok=True)
        (config.data_dir / "truth.json").write_text(json.dumps(history.truth, indent=2))
        load_into_store(history, factory)
        steps.append(f"generated {len(history.customers):,} customers, {len(history.events):,} events and "
                     f"{len(history.attempts):,} contact attempts (planted truth in {config.data_dir / 'truth.json'})")
    else:
        steps.append("customer history already in the store")
    with services.read() as session:
        has_champion = registry.champion(session=session) is not None
    if not has_champion:
        report("training the propensity and timing models")
        result = train_and_register(factory, models_dir=config.models_dir, now=start, actor="demo",
                                    seed=config.seed, mlflow_uri=config.mlflow_tracking_uri,
                                    objectives_file=config.objectives_file)
        steps.append(f"trained {result.version}: held-out ROC AUC {result.metrics['roc_auc']:.3f}, "
                     f"top-decile lift {result.metrics['top_decile_lift']:.2f}")
    else:
        steps.append("a champion model is already registered")
    steps.append(_prepare_library(services, report))
    if weeks:
        lived = simulate(services, start=start, weeks=weeks, seed=config.seed, report=report)
        steps.append(lived.line())
    with services.read() as session:
        last_run = latest_batch_run(session=session)
    if last_run is None or weeks:
        report("scoring every customer")
        summary = score_all(factory, now=services.now(), policy=services.contact_policy, reasons=services.reason_table,
                            challenger_share=config.challenger_share, chunk_size=config.score_chunk_size,
                            parquet_path=config.exports_dir / "decisions-demo.parquet", objectives=services.objectives)
        steps.append(f"scored {summary.stats.get('customers', 0):,} customers (run {summary.run_id})")
    else:
        summary = ScoreSummary(last_run.id, last_run.stats, last_run.parquet_path, last_run.champion_version,
                               last_run.challenger_version, [])
        steps.append(f"latest scoring run reused: {last_run.id}")
    return summary, steps


def prepare_tuned_model(settings: Settings, report: Callable[[str], None] = lambda _: None) -> str:
    """The local model fine-tuned for the task the demo drafts with, once: `outreach llm train`'s defaults for
    that task alone (the opening: about 11 minutes on 2 cores, against about 25 for both tasks). The same data,
    prompts and settings name the same model, which is reused."""
    from app.drafting.local import model_path
    from app.drafting.service import resolve_mode
    from app.drafting.tuning import DATA_FILE, TrainSettings, earned_its_place, evaluation_of, inputs, model_name, \
        records, train
    from app.library.index import default_embedder

    data_file = settings.prompts_dir / DATA_FILE
    task = resolve_mode(settings.llm_draft_mode, local=True)
    tuning = TrainSettings(threads=settings.llm_local_threads,
                           **({"rewrite_examples": 0} if task == "opening" else {}))
    name = model_name(model_path(), *inputs(data_file, settings.prompts_dir, tuning), tuning)
    record = next((r for r in records(settings.tuned_llm_dir) if r.get("name") == name), None)
    if record is None:
        record = train(base=model_path(), data_file=data_file, prompts_dir=settings.prompts_dir,
                       out_dir=settings.tuned_llm_dir, settings=tuning,
                       embedder=default_embedder(settings.embedding_model), on_progress=report)
        done = f"fine-tuned {name} in {record['train_seconds']:.0f} s"
    else:
        done = f"fine-tuned model {name} reused"
    figures = evaluation_of(record, task)
    if earned_its_place(record, task):
        return (f"{done}: ready {task}s on held-out situations {figures['tuned']['ready_share']:.0%} "
                f"(shipped model {figures['base']['ready_share']:.0%}); drafting uses it")
    return f"{done}: it did not beat the shipped model on held-out situations, which keeps drafting"


def prepare_cards_and_users(services: Services, summary: ScoreSummary) -> tuple[list[str], dict[str, str]]:
    """The day's cards (once) and the demo users with fresh tokens."""
    config, now, steps = services.settings, services.now(), []
    with services.unit_of_work() as session:
        if not cards.built_from(session=session, run_id=summary.run_id):
            built = cards.build_cards(session=session, run_id=summary.run_id, now=now, daily_cap=config.card_daily_cap,
                                      sla_hours=config.card_sla_hours)
            steps.append(f"built {built.open:,} open cards ({config.card_daily_cap} per rep) and queued {built.queued:,}")
        tokens = ensure_demo_users(session=session, now=now, ttl_days=config.token_ttl_days)
    steps.append("demo users: " + ", ".join(tokens))
    return steps, tokens
