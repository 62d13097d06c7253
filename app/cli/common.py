"""What every command shares: the Typer app, the consoles, error handling, and the composition root."""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from functools import wraps
from typing import Any, TypeVar

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from app.config import Settings, get_settings

app = typer.Typer(help="outreach: who to contact, when, on which channel and what to say.",
                  no_args_is_help=True, rich_markup_mode="rich", pretty_exceptions_enable=False)

# Tables stay readable when output goes to a file or a pipe, where rich would assume 80 columns.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 160)
errors = Console(stderr=True, soft_wrap=True)
F = TypeVar("F", bound=Callable[..., Any])


class UserError(Exception):
    """A problem the user can fix; printed as one clear line, never a stack trace."""


def group(name: str, help: str) -> typer.Typer:  # noqa: A002 - Typer's own word
    sub = typer.Typer(help=help, no_args_is_help=True)
    app.add_typer(sub, name=name)
    return sub


def friendly(command: F) -> F:
    """Known errors become one red line and exit code 2; anything else exit code 1 without a trace."""
    from app.data.importer import ImportFileError
    from app.data.mapping import MappingError
    from app.drafting.llm import LLMError
    from app.drafting.prompts import PromptError
    from app.drafting.tuning import TuningError
    from app.errors import OutreachError
    from app.intents.routing import RoutingError
    from app.intents.taxonomy import TaxonomyError
    from app.models.objectives import ObjectivesError
    from app.models.propensity import TrainingDataError
    from app.policy.rules import PolicyError
    from app.review.policy import ReviewPolicyError

    known = (UserError, OutreachError, ImportFileError, MappingError, TrainingDataError, PolicyError, LLMError,
             PromptError, LookupError, FileNotFoundError, ReviewPolicyError, TaxonomyError, RoutingError,
             ObjectivesError, TuningError)

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except known as exc:
            errors.print(f"[red]error:[/red] {escape(str(exc))}", highlight=False)
            raise typer.Exit(2) from None
        except (typer.Exit, typer.Abort, KeyboardInterrupt):
            raise
        except Exception as exc:  # noqa: BLE001 - the last line of defence against stack traces
            errors.print(f"[red]internal error:[/red] {type(exc).__name__}: {escape(str(exc))}", highlight=False)
            raise typer.Exit(1) from None

    return wrapper  # type: ignore[return-value]


def settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "settings"
        raise UserError(f"setting {where.upper()}: {first['msg'].removeprefix('Value error, ')}") from None


_services: Any = None


def services():  # noqa: ANN201 - app.services.Services, imported lazily to keep `--help` fast
    """The composition root for this command (built once per process)."""
    global _services
    from app.services import Services

    config = settings()
    if _services is None or _services.settings is not config:
        if _services is not None:
            _services.close()
        _services = Services(config)
    return _services


def actor() -> str:
    """Who ran a command, for logs and the audit trail."""
    import getpass

    return f"cli:{getpass.getuser()}"


@contextmanager
def progress_bar(description: str, total: int | None) -> Iterator[Callable[[int], None]]:
    """A rich progress bar; yields `advance(n)`. Quiet when output is not a terminal."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  console=errors, transient=True, disable=not errors.is_terminal) as bar:
        task = bar.add_task(description, total=total)
        yield lambda n: bar.advance(task, n)


def parse_now(value: str | None, option: str = "--now") -> datetime:
    """A time given on the command line, or the clock's now."""
    if value is None:
        return services().now()
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise UserError(f"{option}: {value!r} is not an ISO date or date-time (e.g. 2026-11-01T09:00)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)
