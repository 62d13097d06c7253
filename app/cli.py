"""The `outreach` command. Each command parses its options, calls one service and prints the result."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import wraps
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from app.config import Settings, get_settings

app = typer.Typer(help="outreach: who to contact, when, on which channel and what to say.",
                  no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False)
db_app = typer.Typer(help="Database schema and migrations.", no_args_is_help=True)
models_app = typer.Typer(help="The model registry: list, promote, set a challenger, roll back.", no_args_is_help=True)
eval_app = typer.Typer(help="Offline evaluation of the models on your own data.", no_args_is_help=True)
library_app = typer.Typer(help="The script-template library: import, review, search.", no_args_is_help=True)
review_app = typer.Typer(help="Guardrails and the compliance queue: check, queue, approve, reject.", no_args_is_help=True)
audit_app = typer.Typer(help="The hash-chained audit trail: verify, export.", no_args_is_help=True)
users_app = typer.Typer(help="Users, roles and API tokens.", no_args_is_help=True)
cards_app = typer.Typer(help="The day's recommendation cards.", no_args_is_help=True)
llm_app = typer.Typer(help="The local drafting model: serve, start, stop, status.", no_args_is_help=True)
app.add_typer(db_app, name="db")
app.add_typer(models_app, name="models")
app.add_typer(eval_app, name="eval")
app.add_typer(library_app, name="library")
app.add_typer(llm_app, name="llm")
app.add_typer(users_app, name="users")
app.add_typer(cards_app, name="cards")
app.add_typer(review_app, name="review")
app.add_typer(audit_app, name="audit")

# Tables stay readable when output goes to a file or a pipe, where rich would assume 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A problem the user can fix; printed as one clear line, never a stack trace."""


def friendly(command: F) -> F:
    """Known errors become one red line and exit code 2; anything else exit code 1 without a trace."""
    from app.data.importer import ImportFileError
    from app.data.mapping import MappingError
    from app.models.propensity import TrainingDataError
    from app.models.registry import RegistryError
    from app.drafting.llm import LLMError
    from app.drafting.prompts import PromptError
    from app.library.service import LibraryError
    from app.policy.rules import PolicyError
    from app.review.policy import ReviewPolicyError
    from app.review.service import Conflict, NotReleasable, ReviewError
    from app.users.service import UserError as AccountError

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (UserError, ImportFileError, MappingError, TrainingDataError, RegistryError, PolicyError,
                LibraryError, LLMError, PromptError, LookupError, FileNotFoundError, ReviewPolicyError, ReviewError,
                Conflict, NotReleasable, AccountError) as exc:
            errors.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against stack traces
            errors.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise UserError(f"setting {where.upper()}: {first['msg'].removeprefix('Value error, ')}") from None


def store():  # noqa: ANN201 - sessionmaker, imported lazily to keep `--help` fast
    from app.store.db import open_store

    return open_store(settings().resolved_database_url)


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar; yields `advance(n)`. Quiet when output is not a terminal."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=errors, transient=True, disable=not errors.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def parse_now(value: str | None) -> datetime:
    if value is None:
        return datetime.now(timezone.utc)
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"--now: {value!r} is not an ISO date or date-time (e.g. 2026-11-01T09:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    store()
    console.print(f"database ready: {settings().resolved_database_url}")


@app.command()
@friendly
def generate(
    customers: Annotated[int, typer.Option(min=1, help="How many customers.")] = 5000,
    events_per_customer: Annotated[float, typer.Option(min=0.0, help="Mean events per customer.")] = 10.0,
    months: Annotated[int, typer.Option(min=1, max=60, help="Months of history.")] = 13,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: SEED setting).")] = None,
    now: Annotated[str | None, typer.Option(help="End of the history, ISO date-time (default: this hour).")] = None,
    parquet: Annotated[Path | None, typer.Option(help="Also write the history as Parquet files to this folder.")] = None,
    load: Annotated[bool, typer.Option(help="Replace the store's customers, events and history with it.")] = True,
) -> None:
    """Generate a seeded synthetic outreach history with planted ground truth (see truth.json)."""
    from app.data.synthetic import default_now, generate as make_history, load_into_store

    config = settings()
    end = parse_now(now) if now else default_now()
    with errors.status("generating history"):
        history = make_history(customers=customers, events_per_customer=events_per_customer, months=months,
                               seed=config.seed if seed is None else seed, now=end)
    config.data_dir.mkdir(parents=True, exist_ok=True)
    (config.data_dir / "truth.json").write_text(json.dumps(history.truth, indent=2))
    if parquet:
        history.write_parquet(parquet)
    if load:
        total = sum(len(f) for f in (history.customers, history.consents, history.events, history.attempts))
        with progress_bar("loading into the store", total) as advance:
            load_into_store(history, store(), progress=advance)
    console.print(f"generated {len(history.customers):,} customers, {len(history.events):,} events, "
                  f"{len(history.attempts):,} contact attempts up to {end:%Y-%m-%d %H:%M} UTC"
                  + (" and loaded them into the store" if load else "")
                  + f"; planted truth in {config.data_dir / 'truth.json'}")


@app.command("import")
@friendly
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV, Parquet (.parquet) or JSON Lines (.jsonl) file.")],
    mapping: Annotated[str, typer.Option("--mapping", "-m", help="Mapping YAML file, or a built-in name: bank-marketing.")],
    rejects: Annotated[Path | None, typer.Option(help="Where to write rejected rows (default: FILE.rejected.EXT).")] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate only; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    now: Annotated[str | None, typer.Option(help="Reject timestamps after this (default: now).")] = None,
) -> None:
    """Import customers, consent, events and outreach history through a column mapping.

    Every row is validated; valid rows are written in batches (one transaction each) and are
    idempotent (re-importing adds nothing); rejected rows are listed with row, field and reason
    and saved to a file you can fix and import again. Exits 1 when any row was rejected.
    """
    from app.data.importer import import_file
    from app.data.mapping import load_mapping

    config = settings()
    plan = load_mapping(mapping)
    with progress_bar(f"importing {file.name}", None) as advance:
        report = import_file(file, plan, session_factory=store(), now=parse_now(now),
                             batch_size=config.import_batch_size, rejects_path=rejects, dry_run=dry_run,
                             progress=advance)
    if as_json:
        print(report.model_dump_json(indent=2))
    else:
        verb = "valid (dry run, nothing written)" if dry_run else "imported"
        console.print(f"{file}: {report.rows_read:,} rows read, {report.rows_read - report.rows_rejected:,} {verb}, "
                      f"{report.rows_rejected:,} rejected")
        for error in report.errors[:20]:
            errors.print(f"  {file.name}: {error}", highlight=False)
        if len(report.errors) > 20:
            errors.print(f"  ... and {len(report.errors) - 20:,} more", highlight=False)
        if report.rejected_file:
            errors.print(f"rejected rows saved to {report.rejected_file}: fix them and import that file again",
                         highlight=False)
    if report.rows_rejected:
        raise typer.Exit(1)


def actor() -> str:
    """Who ran a command, for the registry's log."""
    import getpass

    return f"cli:{getpass.getuser()}"


@app.command()
@friendly
def train(
    holdout: Annotated[float, typer.Option(min=0.05, max=0.5, help="Share of the most recent attempts held out for testing.")] = 0.2,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: SEED setting).")] = None,
    monotone: Annotated[list[str] | None, typer.Option(help="FEATURE=+1|-1 forces a monotone effect (repeatable); "
                                                          "default: pricing_question_14d=+1, upsell_interest_14d=+1.")] = None,
    now: Annotated[str | None, typer.Option(help="Training time to record, ISO (default: now).")] = None,
) -> None:
    """Train propensity and timing models on the store's history and register them as a new version.

    The first version becomes champion; later ones wait as candidates for `outreach models promote`.
    """
    from app.models.training import train_and_register

    config = settings()
    constraints = None
    if monotone:
        constraints = {}
        for item in monotone:
            name, _, sign = item.partition("=")
            if sign not in ("+1", "1", "-1", "0"):
                raise UserError(f"--monotone {item!r}: use FEATURE=+1 or FEATURE=-1")
            constraints[name] = int(sign)
    with errors.status("training propensity and timing models"):
        result = train_and_register(store(), models_dir=config.models_dir, now=parse_now(now), actor=actor(),
                                    seed=config.seed if seed is None else seed, holdout_share=holdout,
                                    monotone=constraints, mlflow_uri=config.mlflow_tracking_uri)
    m = result.metrics
    console.print(f"registered {result.version} as {result.status}: held-out ROC AUC {m['roc_auc']:.3f}, "
                  f"PR AUC {m['pr_auc']:.3f}, top-decile lift {m['top_decile_lift']:.2f}, Brier {m['brier']:.4f} "
                  f"({m['n_train']:,} train / {m['n_test']:,} test attempts)")


@app.command()
@friendly
def score(
    out: Annotated[Path | None, typer.Option(help="Parquet file for the decisions (default: DATA_DIR/exports/decisions-RUN.parquet).")] = None,
    chunk_size: Annotated[int | None, typer.Option(min=100, help="Customers per chunk (default: SCORE_CHUNK_SIZE).")] = None,
    now: Annotated[str | None, typer.Option(help="Decide as of this time, ISO (default: now).")] = None,
    top: Annotated[int, typer.Option(min=0, help="Show the best N recommendations.")] = 10,
    explain_top: Annotated[float | None, typer.Option(min=0.01, max=1.0, help="Explain (and offer) only this top share "
                                                      "by confidence; the rest is ranked (default: SCORE_EXPLAIN_TOP).")] = None,
) -> None:
    """Score every customer: who to contact, when, on which channel, with confidence and reasons.

    Decisions go to the store and to Parquet; every suppressed customer records the rule that did it.
    """
    from app.models.reasons import load_reason_table
    from app.models.scoring import score_all, top_decisions
    from app.policy.rules import load_policy

    config = settings()
    factory = store()
    as_of = parse_now(now)
    path = out or config.exports_dir / f"decisions-{as_of:%Y%m%d-%H%M%S}.parquet"
    from sqlalchemy import func, select

    from app.store.tables import Customer

    with factory() as session:
        total = session.scalar(select(func.count()).select_from(Customer)) or 0
    if not total:
        raise UserError("the store has no customers: run `outreach generate` or `outreach import` first")
    with progress_bar("scoring customers", total) as advance:
        summary = score_all(factory, now=as_of, policy=load_policy(config.contact_policy_file),
                            reasons=load_reason_table(config.reason_templates_file),
                            challenger_share=config.challenger_share, chunk_size=chunk_size or config.score_chunk_size,
                            parquet_path=path, explain_top=explain_top or config.score_explain_top, progress=advance)
    for problem in summary.load_errors:
        errors.print(f"[yellow]warning:[/yellow] model not loaded, ranking by rules instead: {problem}", highlight=False)
    for key, count in summary.stats.items():
        if key.startswith("model_error:"):
            _, version, error = key.split(":", 2)
            errors.print(f"[yellow]warning:[/yellow] model {version} failed on {count} chunk(s) ({error}); those "
                         "customers were ranked by rules (see the log)", highlight=False)
    print_decisions(top_decisions(factory, summary.run_id, top), summary)


def print_decisions(decisions: list, summary: Any, scripts: dict[int, str] | None = None) -> None:  # noqa: ANN001
    stats = summary.stats
    table = Table(title=f"Top recommendations ({summary.run_id})", show_lines=True)
    columns = ["#", "customer", "confidence", "channel", "when (customer's time)", "product", "why", "flags"]
    for column in columns + (["script template"] if scripts is not None else []):
        table.add_column(column, overflow="fold")
    for rank, d in enumerate(decisions, start=1):
        confidence = f"{d.confidence:.0%}" if d.confidence is not None else f"score {d.score:.2f}"
        flags = [d.method] + (["needs confirmation (sensitive)"] if d.requires_confirmation else [])
        table.add_row(str(rank), d.customer_id, confidence, d.channel or "", d.slot_local or "", d.product or "",
                      "\n".join(f"• {r['text']}" for r in d.reasons), ", ".join(flags),
                      *([scripts.get(d.id, "")] if scripts is not None else []))
    console.print(table)
    rules = ", ".join(f"{k.split(':', 1)[1]} {v:,}" for k, v in sorted(stats.items()) if k.startswith("rule:"))
    console.print(f"{stats.get('customers', 0):,} customers scored: {stats.get('recommended', 0):,} recommended "
                  f"({stats.get('rule_based', 0):,} rule-based), {stats.get('suppressed_by_policy', 0):,} suppressed by "
                  f"policy ({rules or 'none'}), {stats.get('suppressed_no_reason', 0):,} without a reason. "
                  f"Champion: {summary.champion or 'none (rule-based)'}; challenger: {summary.challenger or 'none'}.")
    if summary.parquet_path:
        console.print(f"decisions written to the store and to {summary.parquet_path}")


@models_app.command("list")
@friendly
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every registered version with its status and held-out metrics."""
    from app.models import registry

    versions = registry.list_versions(store())
    if as_json:
        print(json.dumps([{"id": v.id, "status": v.status, "created_at": v.created_at.isoformat(),
                           "created_by": v.created_by, "metrics": v.metrics, "data": v.data_snapshot}
                          for v in versions], indent=2))
        return
    table = Table(title="Model versions")
    for column in ("version", "status", "created", "ROC AUC", "PR AUC", "lift@10%", "Brier", "trained on"):
        table.add_column(column)
    for v in versions:
        m = v.metrics
        table.add_row(v.id, v.status, f"{v.created_at:%Y-%m-%d %H:%M}", f"{m.get('roc_auc', float('nan')):.3f}",
                      f"{m.get('pr_auc', float('nan')):.3f}", f"{m.get('top_decile_lift', float('nan')):.2f}",
                      f"{m.get('brier', float('nan')):.4f}", f"{v.data_snapshot.get('attempts', 0):,} attempts")
    console.print(table)


@models_app.command("promote")
@friendly
def models_promote(
    version: Annotated[str, typer.Argument(help="Version id (see `outreach models list`).")],
    force: Annotated[bool, typer.Option(help="Promote even if its held-out metrics are worse than the champion's.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the registry log.")] = None,
) -> None:
    """Make a version the champion; the old champion is kept for rollback."""
    from app.models import registry

    promoted = registry.promote(store(), version, now=parse_now(None), actor=actor(), force=force, reason=reason)
    console.print(f"{promoted.id} is now the champion")


@models_app.command("challenger")
@friendly
def models_challenger(version: Annotated[str, typer.Argument(help="Version id to test against the champion.")]) -> None:
    """Put a version in the challenger arm of the A/B split (CHALLENGER_SHARE of customers)."""
    from app.models import registry

    chosen = registry.set_challenger(store(), version, now=parse_now(None), actor=actor())
    console.print(f"{chosen.id} is now the challenger for {settings().challenger_share:.0%} of customers")


@models_app.command("hold")
@friendly
def models_hold(
    reason: Annotated[str, typer.Option(help="Why (recorded in the registry log).")],
    by: Annotated[str, typer.Option("--by", help="Who decides.")],
    release: Annotated[bool, typer.Option(help="Lift the hold instead.")] = False,
) -> None:
    """A business override: stop (or allow again) automatic promotion by `outreach retrain`."""
    from app.models.retrain import hold

    hold(store(), actor=by, reason=reason, now=datetime.now(timezone.utc), release=release)
    console.print("hold lifted" if release else "held: `outreach retrain` will train and report but change nothing")


@app.command()
@friendly
def retrain(
    min_gain: Annotated[float, typer.Option(help="Held-out ROC AUC gain needed to become the challenger.")] = 0.0,
    min_live: Annotated[int, typer.Option(help="Outcomes per arm needed before the live split can promote.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Retrain on history plus feedback, compare with the champion offline and on the live A/B split, and
    deploy only what is better (a business hold stops changes). Schedule it, e.g. nightly with cron:
    `0 2 * * * cd /srv/outreach && .venv/bin/outreach retrain >> data/retrain.log 2>&1`."""
    from app.models.retrain import retrain as run

    config = settings()
    with errors.status("training on history and feedback"):
        report = run(store(), models_dir=config.models_dir, now=datetime.now(timezone.utc), actor="retrain",
                     seed=config.seed, min_gain=min_gain, min_live=min_live)
    if as_json:
        print(json.dumps(report.__dict__, indent=2, default=str))
        return
    console.print(f"trained {report.version}: {report.offline}", highlight=False)
    console.print(f"live split: {report.live}", highlight=False)
    for action in report.actions:
        console.print(f"• {action}", highlight=False)


@models_app.command("rollback")
@friendly
def models_rollback() -> None:
    """Give the champion's place back to the version it replaced."""
    from app.models import registry

    restored = registry.rollback(store(), now=parse_now(None), actor=actor())
    console.print(f"rolled back: {restored.id} is the champion again")


@eval_app.command("propensity")
@friendly
def eval_propensity(
    data: Annotated[Path, typer.Option(help="A CSV file with one row per contact and a target column.")],
    target: Annotated[str, typer.Option(help="The target column.")],
    positive: Annotated[str, typer.Option(help="The target value that counts as a success.")],
    sep: Annotated[str, typer.Option(help="Field separator.")] = ",",
    drop: Annotated[list[str] | None, typer.Option(help="Column to leave out, e.g. one that leaks the outcome (repeatable).")] = None,
    test_size: Annotated[float, typer.Option(help="Share of rows held out (stratified).")] = 0.25,
    seed: Annotated[int, typer.Option(help="Random seed of the split and the model.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train the propensity model on a stratified split of any CSV and report how well it ranks and calibrates."""
    from app.models.evaluation import evaluate_propensity

    with errors.status("training and evaluating"):
        result = evaluate_propensity(data, sep=sep, target=target, positive=positive, drop=drop or [],
                                     test_size=test_size, seed=seed)
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        console.print(f"{key:>28}: {value:.4f}" if isinstance(value, float) else f"{key:>28}: {value}")


@app.command()
@friendly
def demo(
    prepare_only: Annotated[bool, typer.Option(help="Prepare data, models and cards, then stop.")] = False,
    customers: Annotated[int | None, typer.Option(min=100, help="Synthetic customers (default: DEMO_CUSTOMERS).")] = None,
    host: Annotated[str, typer.Option(help="Address to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to serve on.")] = 8000,
) -> None:
    """The whole product on embedded defaults: synthetic history, a trained model, scored decisions, the
    day's cards with drafts by the local model, demo users; then the service, with its URL and sign-in tokens.

    Idempotent: what is already prepared is reused. Delete the data folder to start again.
    """
    from app.api.workbench import Workbench
    from app.cards import service as cards
    from app.demo import prepare_demo
    from app.models.scoring import top_decisions
    from app.users.service import ensure_demo_users

    config = settings()
    factory = store()
    with errors.status("preparing the demo (first run: generate, train, score)") as status:
        summary, steps = prepare_demo(factory, config, customers=customers or config.demo_customers,
                                      report=lambda text: status.update(text))
        now = datetime.now(timezone.utc)
        if not cards.list_cards(factory, _admin(), status=None, limit=1):
            status.update("building the day's cards")
            built = cards.build_cards(factory, summary.run_id, now=now, daily_cap=config.card_daily_cap,
                                      sla_hours=config.card_sla_hours)
            steps.append(f"built {built.open:,} open cards ({config.card_daily_cap} per rep) and queued {built.queued:,}")
        tokens = ensure_demo_users(factory, now=now)
        steps.append("demo users: " + ", ".join(tokens))
    for step in steps:
        console.print(f"[green]✓[/green] {step}")
    if prepare_only:
        return
    decisions = top_decisions(factory, summary.run_id, 10)
    print_decisions(decisions, summary, scripts=suggest_templates(factory, decisions))
    bench = Workbench(config, factory, template_index())
    with errors.status("drafting demo-rep's cards with the local model (the rest are drafted in the background)"):
        drafted = cards.draft_pending(factory, drafter=bench.drafter, reviewer=bench.reviewer, index=bench.index,
                                      now=now, limit=config.card_daily_cap, rep_id="rep-01")
    console.print(f"[green]✓[/green] drafted {drafted} cards for demo-rep ({bench.drafter.model})")
    console.print("\nSign in at the URL below with one of these tokens (`outreach users token NAME` makes new ones):")
    for name, token in tokens.items():
        console.print(f"  {name:16} {token}", highlight=False)
    run_server(host, port)


def _admin():  # noqa: ANN202 - a User that sees every card, for the CLI's own checks
    from app.store.tables import User

    return User(name="cli", role="admin")


def suggest_templates(factory, decisions: list) -> dict[int, str]:  # noqa: ANN001
    """The best approved template for each decision: where "what to say" starts."""
    from app.library.retrieval import best_for_decision
    from app.store.tables import Customer

    index = template_index()
    out = {}
    with factory() as session:
        customers = {c.id: c for c in session.query(Customer).filter(Customer.id.in_([d.customer_id for d in decisions]))}
    for d in decisions:
        customer = customers[d.customer_id]
        found = best_for_decision(factory, index, d, customer.lifecycle_stage, customer.segment)
        out[d.id] = found.id if found else "(no approved template)"
    return out


def template_index():  # noqa: ANN201 - TemplateIndex, imported lazily (it loads torch)
    from app.library.index import TemplateIndex

    return TemplateIndex.configured(settings())


def sync_index(factory) -> None:  # noqa: ANN001
    from app.library import service

    report = template_index().sync(service.live_versions(factory))
    console.print(f"index synced: {report.added} added, {report.updated} updated, {report.removed} removed, "
                  f"{report.unchanged} unchanged")


@library_app.command("import")
@friendly
def library_import(
    folder: Annotated[Path, typer.Argument(help="Folder of template files (Markdown with YAML front matter).")],
    sync: Annotated[bool, typer.Option(help="Update the vector index afterwards.")] = True,
) -> None:
    """Validate and import every template file of a folder; a bad file is named and nothing of it imported.

    A changed approved template becomes a new draft version that needs approval again.
    """
    from app.library import service

    factory = store()
    report = service.import_directory(factory, folder, actor=actor(), now=parse_now(None))
    console.print(f"{len(report.created)} new, {len(report.new_versions)} new versions (drafts to approve), "
                  f"{len(report.retired)} retired, {len(report.unchanged)} unchanged, {len(report.errors)} rejected")
    for problem in report.errors:
        errors.print(f"  [red]rejected[/red] {problem}", highlight=False)
    if sync:
        sync_index(factory)
    if report.errors:
        raise typer.Exit(1)


@library_app.command("list")
@friendly
def library_list(
    status: Annotated[str | None, typer.Option(help="Only this status: draft, in_review, approved, retired.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every template with its status and versions."""
    from app.library import service

    rows = service.list_templates(store(), status)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Templates ({len(rows)})")
    for column in ("id", "title", "channel", "stage", "status", "latest", "live"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["id"], r["title"], r["channel"], r["stage"], r["status"], f"v{r['latest_version']}",
                      f"v{r['approved_version']}" if r["approved_version"] else "-")
    console.print(table)


@library_app.command("show")
@friendly
def library_show(
    template_id: Annotated[str, typer.Argument(help="Template id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One template: its text, versions, who changed what, and its usage and results by segment."""
    from app.library import service

    info = service.show(store(), template_id)
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    current = info["current"]
    console.print(f"[bold]{info['id']}[/bold] {current['title']} ({current['channel']}, {current['stage']}) - "
                  f"{info['status']}, latest v{info['latest_version']}, live "
                  f"{'v' + str(info['approved_version']) if info['approved_version'] else 'none'}")
    console.print(current["body"], markup=False, highlight=False)
    for event in info["history"]:
        console.print(f"  {event['at'][:19]}  {event['action']:<8} v{event['version']}  {event['actor']}"
                      + (f"  ({event['note']})" if event["note"] else ""), highlight=False)
    if info["usage"]:
        for u in info["usage"]:
            console.print(f"  used with {u['segment'] or 'no segment'}: {u['contacts']} contacts, {u['positive']} positive "
                          f"({u['positive_rate']:.0%}), {u['converted']} converted", highlight=False)
    else:
        console.print("  not used in any recorded contact yet")


@library_app.command("approve")
@friendly
def library_approve(
    template_id: Annotated[str, typer.Argument(help="Template id.")],
    version: Annotated[int | None, typer.Option(help="Version to approve (default: the latest).")] = None,
    sync: Annotated[bool, typer.Option(help="Update the vector index afterwards.")] = True,
) -> None:
    """Approve a version: it becomes the live text that retrieval may return."""
    from app.library import service

    factory = store()
    number = service.approve(factory, template_id, actor=actor(), now=parse_now(None), version=version)
    console.print(f"{template_id} v{number} approved")
    if sync:
        sync_index(factory)


@library_app.command("retire")
@friendly
def library_retire(
    template_id: Annotated[str, typer.Argument(help="Template id.")],
    note: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
    sync: Annotated[bool, typer.Option(help="Update the vector index afterwards.")] = True,
) -> None:
    """Retire a template: it is never retrieved again."""
    from app.library import service

    factory = store()
    service.retire(factory, template_id, actor=actor(), now=parse_now(None), note=note)
    console.print(f"{template_id} retired")
    if sync:
        sync_index(factory)


@library_app.command("sync")
@friendly
def library_sync() -> None:
    """Make the vector index hold exactly the approved, live templates (idempotent)."""
    sync_index(store())


@library_app.command("search")
@friendly
def library_search(
    text: Annotated[str, typer.Argument(help="What the script should be about.")],
    channel: Annotated[str | None, typer.Option(help="email, sms, call or chat.")] = None,
    product: Annotated[str | None, typer.Option(help="Product key, e.g. pro.")] = None,
    stage: Annotated[str | None, typer.Option(help="new_lead, follow_up, upsell, renewal, win_back, change_request.")] = None,
    intent: Annotated[list[str] | None, typer.Option(help="Customer intent, e.g. pricing_question (repeatable).")] = None,
    segment: Annotated[str | None, typer.Option(help="Customer segment whose results count for ranking.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=50, help="How many templates.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search the approved templates, ranked by meaning and by measured results, with why each was chosen."""
    from app.library.retrieval import RetrievalRequest, retrieve

    try:
        request = RetrievalRequest(text=text, channel=channel, product=product, stage=stage, intents=intent or [],
                                   segment=segment, k=k)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"--{first['loc'][0]}: {first['msg']}") from None
    results = retrieve(store(), template_index(), request)
    if as_json:
        print(json.dumps([r.model_dump() for r in results], indent=2))
        return
    table = Table(title=f"Templates for {text!r}")
    for column in ("#", "id", "version", "score", "title", "why"):
        table.add_column(column)
    for rank, r in enumerate(results, start=1):
        table.add_row(str(rank), r.id, f"v{r.version}", f"{r.score:.3f}", r.title, "\n".join(r.why))
    console.print(table)


@app.command()
@friendly
def draft(
    customer: Annotated[str | None, typer.Option(help="Customer id (default: the top-ranked recommendation).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Draft the script for a customer's latest decision: decision, chosen template, draft and timings."""
    import time

    from app.drafting.service import Drafter, DraftRequest, draft_json
    from app.library.retrieval import best_for_decision
    from app.models.scoring import latest_decision
    from app.store.tables import Customer

    config = settings()
    factory = store()
    decision = latest_decision(factory, customer)
    with factory() as session:
        record = session.get(Customer, decision.customer_id)
        stage, segment = record.lifecycle_stage, record.segment
    started = time.perf_counter()
    chosen = best_for_decision(factory, template_index(), decision, stage, segment)
    retrieval_ms = (time.perf_counter() - started) * 1000
    if chosen is None:
        raise UserError(f"no approved {decision.channel} template fits customer {decision.customer_id}")
    drafter = Drafter(config)
    with errors.status(f"drafting with {drafter.model}"):
        result = drafter.draft(factory, DraftRequest(customer_id=decision.customer_id, channel=decision.channel,
                                                     template_id=chosen.id, product=decision.product,
                                                     reasons=[r["text"] for r in decision.reasons],
                                                     decision_id=decision.id), now=datetime.now(timezone.utc))
    from app.review.service import review_draft

    checked = review_draft(factory, reviewer(), drafter.profile, result.id, now=datetime.now(timezone.utc))
    timings = {"retrieval_ms": round(retrieval_ms, 1), "llm_start_s": round(drafter.startup_s, 2),
               "draft_ms": result.latency_ms, "review_ms": checked.latency_ms}
    review_json = {"verdict": checked.verdict.value, "routing": checked.routing, "policy_version": checked.policy_version,
                   "findings": [f.model_dump(exclude={"passed"}) for f in checked.failed]}
    if as_json:
        print(json.dumps({**draft_json(result), "review": review_json, "decision": {
            "id": decision.id, "run_id": decision.run_id, "confidence": decision.confidence, "channel": decision.channel,
            "when": decision.slot_local, "product": decision.product, "reasons": [r["text"] for r in decision.reasons],
            "model_version": decision.model_version, "policy_version": decision.policy_version,
            "requires_confirmation": decision.requires_confirmation}, "template_why": chosen.why,
            "timings": timings}, indent=2, ensure_ascii=False))
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


def reviewer():  # noqa: ANN201 - Reviewer, imported lazily (the embedder loads torch)
    from app.library.index import default_embedder
    from app.review.checks import Reviewer

    config = settings()
    return Reviewer.from_folder(config.guardrails_dir, default_embedder(config.embedding_model))


def company_profile():  # noqa: ANN201
    from app.drafting.facts import load_profile

    return load_profile(settings().company_profile)


@review_app.command("check")
@friendly
def review_check(
    file: Annotated[Path, typer.Option("--file", help="JSON Lines: {id, channel, text, customer?, template_id?, subject?}.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per message.")] = False,
) -> None:
    """Check past or proposed messages against the current policy: one verdict and the findings per message.

    Exit code 0 when every line was checked (whatever the verdicts), 1 when some lines were unreadable.
    """
    from app.review.batch import check_lines

    config = settings()
    try:
        lines = file.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--file {file}: cannot be read ({exc})") from None
    factory = store() if config.database_url or (config.data_dir / "outreach.db").exists() else None
    bad = 0
    for result in check_lines(lines, reviewer(), factory=factory, profile=company_profile()):
        bad += "error" in result
        if as_json:
            print(json.dumps(result, ensure_ascii=False))
        elif "error" in result:
            errors.print(f"[red]line {result['line']}:[/red] {result['error']}", highlight=False)
        else:
            failed = "; ".join(f"{f['validator']}: {f['reason']}" for f in result["findings"])
            console.print(f"{result['id']}: [bold]{result['verdict']}[/bold] {failed}", highlight=False)
    if bad:
        raise typer.Exit(1)


@review_app.command("queue")
@friendly
def review_queue(
    status: Annotated[str, typer.Option(help="pending, approved, rejected or all.")] = "pending",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The compliance queue: drafts waiting for approval, with findings, reasons and data sources."""
    from app.review.service import queue

    items = queue(store(), None if status == "all" else status)
    if as_json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"Compliance queue ({status})", show_lines=True)
    for column in ("item", "v", "customer", "channel", "why it needs approval", "draft"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(item["id"], str(item["version"]), item["customer_id"], item["channel"],
                      "\n".join(item["routing"]), item["body"][:300])
    console.print(table)


@review_app.command("approve")
@friendly
def review_approve(
    item: Annotated[str, typer.Argument(help="Queue item id.")],
    version: Annotated[int, typer.Option(help="The item version you reviewed (from the queue).")],
    by: Annotated[str, typer.Option("--by", help="Reviewer name.")],
    edit_file: Annotated[Path | None, typer.Option(help="A file with the edited text to approve instead.")] = None,
    comment: Annotated[str | None, typer.Option(help="Note for the audit trail.")] = None,
) -> None:
    """Approve a queued draft (optionally edited; an edit is checked again)."""
    from app.review.service import approve

    edited = edit_file.read_text(encoding="utf-8") if edit_file else None
    done = approve(store(), reviewer(), company_profile(), item, version=version, by=by,
                   now=datetime.now(timezone.utc), edited_body=edited, comment=comment)
    console.print(f"approved {done.id} (version {done.version}); the draft may now be sent")


@review_app.command("reject")
@friendly
def review_reject(
    item: Annotated[str, typer.Argument(help="Queue item id.")],
    version: Annotated[int, typer.Option(help="The item version you reviewed (from the queue).")],
    by: Annotated[str, typer.Option("--by", help="Reviewer name.")],
    reason: Annotated[str, typer.Option(help="Reason code: prohibited_claim, missing_disclosure, personal_data, tone, "
                                             "inaccurate, off_brand, wrong_customer, other.")],
    comment: Annotated[str | None, typer.Option(help="What should change.")] = None,
) -> None:
    """Reject a queued draft with a reason code and a comment asking for changes."""
    from app.review.service import reject

    done = reject(store(), item, version=version, by=by, reason_code=reason, comment=comment,
                  now=datetime.now(timezone.utc))
    console.print(f"rejected {done.id} ({done.reason_code}); the template ranks lower for similar customers")


@audit_app.command("verify")
@friendly
def audit_verify() -> None:
    """Recompute the hash chain: exit 0 when intact, 1 naming the first entry that was tampered with."""
    from app.review.audit import verify

    result = verify(store())
    if result.ok:
        console.print(f"audit trail intact: {result.entries:,} entries")
        return
    errors.print(f"[red]audit trail broken:[/red] {result.problem} ({result.entries:,} entries verified before it)",
                 highlight=False)
    raise typer.Exit(1)


@audit_app.command("export")
@friendly
def audit_export(out: Annotated[Path, typer.Option(help="JSON Lines file to write.")]) -> None:
    """Write every audit entry, with its hashes, as JSON Lines for auditors."""
    from app.review.audit import export

    count = export(store(), out)
    console.print(f"{count:,} audit entries written to {out}")


@users_app.command("add")
@friendly
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="rep, content, compliance, data_scientist or admin.")],
    rep_id: Annotated[str | None, typer.Option(help="For a rep: the rep id customers are assigned to (owner_rep).")] = None,
    team: Annotated[str | None, typer.Option(help="For a rep: the team whose queue they share.")] = None,
) -> None:
    """Add a user with a role."""
    from app.users import service as users

    user = users.add(store(), name, role, now=datetime.now(timezone.utc), rep_id=rep_id, team=team)
    console.print(f"added {user.name} ({user.role}); `outreach users token {user.name}` prints an API token")


@users_app.command("list")
@friendly
def users_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every user with role, rep id and team (never tokens)."""
    from app.users import service as users

    rows = [{"name": u.name, "role": u.role, "rep_id": u.rep_id, "team": u.team, "has_token": bool(u.token_hash)}
            for u in users.list_users(store())]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Users")
    for column in ("name", "role", "rep id", "team", "token"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["name"], r["role"], r["rep_id"] or "", r["team"] or "", "yes" if r["has_token"] else "no")
    console.print(table)


@users_app.command("token")
@friendly
def users_token(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Print a new API token for the user (the previous one stops working). Use it as `Authorization: Bearer TOKEN`."""
    from app.users import service as users

    print(users.issue_token(store(), name))


@cards_app.command("build")
@friendly
def cards_build() -> None:
    """Build today's cards from the latest scoring run (customers with a live card keep theirs)."""
    from app.cards import service as cards

    config = settings()
    factory = store()
    run = cards.latest_run(factory)
    if run is None:
        raise UserError("no finished scoring run: run `outreach score` first")
    built = cards.build_cards(factory, run.id, now=datetime.now(timezone.utc), daily_cap=config.card_daily_cap,
                              sla_hours=config.card_sla_hours)
    console.print(f"{built.open:,} open cards, {built.queued:,} queued, {built.skipped_live:,} customers kept their live card")


@llm_app.command("serve")
@friendly
def llm_serve() -> None:
    """Run the local model's OpenAI-compatible server on 127.0.0.1 in the foreground (Ctrl-C stops it)."""
    from app.drafting.local import MODEL_NAME, LocalServer

    server = LocalServer.configured(settings())
    console.print(f"starting {MODEL_NAME} on {server.base_url} (log: {server.log_file})")
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
    from app.drafting.local import MODEL_NAME, LocalServer
    from app.drafting.service import resolve_mode

    config = settings()
    if config.uses_local_llm:
        server = LocalServer.configured(config)
        state = "answering" if server.is_ready() else "not running (starts on the first draft)"
        console.print(f"local model {MODEL_NAME} on {server.base_url}: {state}; "
                      f"drafting mode {resolve_mode(config.llm_draft_mode, local=True)}")
    else:
        console.print(f"endpoint {config.llm_base_url}, model {config.llm_model}; "
                      f"drafting mode {resolve_mode(config.llm_draft_mode, local=False)}")


@app.command()
@friendly
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port.")] = 8000,
) -> None:
    """Run the HTTP service: the API (docs at /docs), the pages, and the background worker (triggers from
    POST /api/events, drafting of new cards, SLA reminders and reassignment)."""
    store()  # migrate before the first request
    run_server(host, port)


def run_server(host: str, port: int) -> None:
    import uvicorn

    from app.api.main import create_app

    console.print(f"outreach on http://{host}:{port}/  (API docs: http://{host}:{port}/docs)")
    uvicorn.run(create_app(settings(), worker=True), host=host, port=port, log_level="warning")


def main() -> None:  # pragma: no cover - console script entry for `python -m app.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
