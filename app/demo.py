"""The embedded demo: everything `outreach demo` prepares, each step skipped when already done."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timezone

from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.data.synthetic import default_now, generate, load_into_store
from app.library import service as library
from app.library.index import TemplateIndex
from app.models import registry
from app.models.reasons import load_reason_table
from app.models.scoring import ScoreSummary, score_all
from app.models.training import train_and_register
from app.policy.rules import load_policy
from app.store.tables import Customer, ScoreRun, Template


def _prepare_library(factory: sessionmaker[Session], config: Settings, report: Callable[[str], None]) -> str:
    """The starter template library in the store and in the vector index."""
    with factory() as session:
        has_templates = bool(session.scalar(select(func.count()).select_from(Template)))
    imported = ""
    if not has_templates:
        report(f"importing the template library from {config.library_dir}")
        result = library.import_directory(factory, config.library_dir, actor="demo", now=datetime.now(timezone.utc))
        if result.errors:
            raise library.LibraryError("the starter library has invalid files: " + "; ".join(result.errors))
        imported = f"imported {len(result.created)} templates; "
    report("indexing approved templates")
    index = TemplateIndex.configured(config)
    synced = index.sync(library.live_versions(factory))
    return (f"{imported}template index holds {synced.added + synced.updated + synced.unchanged} approved templates "
            f"({synced.added} added now)")


def prepare_demo(factory: sessionmaker[Session], config: Settings, *, customers: int,
                 report: Callable[[str], None] = lambda _: None) -> tuple[ScoreSummary, list[str]]:
    """Generate, train, import the library and score as needed; returns the latest scoring run and what was done."""
    steps: list[str] = []
    with factory() as session:
        has_customers = bool(session.scalar(select(func.count()).select_from(Customer)))
    if not has_customers:
        report(f"generating a synthetic history of {customers:,} customers")
        history = generate(customers=customers, seed=config.seed, now=default_now())
        config.data_dir.mkdir(parents=True, exist_ok=True)
        (config.data_dir / "truth.json").write_text(json.dumps(history.truth, indent=2))
        load_into_store(history, factory)
        steps.append(f"generated {len(history.customers):,} customers, {len(history.events):,} events and "
                     f"{len(history.attempts):,} contact attempts (planted truth in {config.data_dir / 'truth.json'})")
    else:
        steps.append("customer history already in the store")
    if registry.champion(factory) is None:
        report("training the propensity and timing models")
        result = train_and_register(factory, models_dir=config.models_dir, now=datetime.now(timezone.utc),
                                    actor="demo", seed=config.seed, mlflow_uri=config.mlflow_tracking_uri)
        steps.append(f"trained {result.version}: held-out ROC AUC {result.metrics['roc_auc']:.3f}, "
                     f"top-decile lift {result.metrics['top_decile_lift']:.2f}")
    else:
        steps.append("a champion model is already registered")
    steps.append(_prepare_library(factory, config, report))
    with factory() as session:
        last_run = session.scalars(select(ScoreRun).where(ScoreRun.finished_at.is_not(None))
                                   .order_by(ScoreRun.started_at.desc())).first()
    if last_run is None:
        report("scoring every customer")
        summary = score_all(factory, now=datetime.now(timezone.utc), policy=load_policy(config.contact_policy_file),
                            reasons=load_reason_table(config.reason_templates_file),
                            challenger_share=config.challenger_share, chunk_size=config.score_chunk_size,
                            parquet_path=config.exports_dir / "decisions-demo.parquet")
        steps.append(f"scored {summary.stats.get('customers', 0):,} customers (run {summary.run_id})")
    else:
        summary = ScoreSummary(last_run.id, last_run.stats, last_run.parquet_path, last_run.champion_version,
                               last_run.challenger_version, [])
        steps.append(f"latest scoring run reused: {last_run.id}")
    return summary, steps
