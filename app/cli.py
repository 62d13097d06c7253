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
app.add_typer(db_app, name="db")

console = Console(soft_wrap=True)
errors = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A problem the user can fix; printed as one clear line, never a stack trace."""


def friendly(command: F) -> F:
    """Known errors become one red line and exit code 2; anything else exit code 1 without a trace."""
    from app.data.importer import ImportFileError
    from app.data.mapping import MappingError

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except (UserError, ImportFileError, MappingError) as exc:
            errors.print(f"[red]error:[/red] {exc}", highlight=False)
            raise typer.Exit(2) from None
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"])
            errors.print(f"[red]error:[/red] setting {where.upper()}: {first['msg']}", highlight=False)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against stack traces
            errors.print(f"[red]internal error:[/red] {type(exc).__name__}: {exc}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    return get_settings()


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
    seed: Annotated[int | None, typer.Option(help="Random seed [default: SEED setting].")] = None,
    now: Annotated[str | None, typer.Option(help="End of the history, ISO date-time [default: this hour].")] = None,
    parquet: Annotated[Path | None, typer.Option(help="Also write the history as Parquet files to this folder.")] = None,
    load: Annotated[bool, typer.Option(help="Replace the store's customers, events and history with it.")] = True,
) -> None:
    """Generate a seeded synthetic outreach history with planted ground truth (see truth.json)."""
    from app.data.synthetic import default_now, generate as make_history, load_into_store

    config = settings()
    end = parse_now(now) if now else default_now()
    with console.status("generating history"):
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
    rejects: Annotated[Path | None, typer.Option(help="Where to write rejected rows [default: FILE.rejected.EXT].")] = None,
    dry_run: Annotated[bool, typer.Option(help="Validate only; write nothing.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    now: Annotated[str | None, typer.Option(help="Reject timestamps after this [default: now].")] = None,
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


def main() -> None:  # pragma: no cover - console script entry for `python -m app.cli`
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
