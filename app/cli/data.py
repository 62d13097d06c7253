"""`outreach db`, `generate`, `import`: the store and the history in it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import app, console, errors, friendly, group, parse_now, progress_bar, services, settings

db_app = group("db", "Database schema and migrations.")


@db_app.command("upgrade")
@friendly
def db_upgrade() -> None:
    """Create or migrate the database schema to the newest version."""
    services()
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
            load_into_store(history, services().store, progress=advance)
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
        report = import_file(file, plan, session_factory=services().store, now=parse_now(now),
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
