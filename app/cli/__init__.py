"""The `outreach` command: one module per command group, each command a thin call into a service."""

from app.cli import changes, data, drafting, events, intents, library, models, report, review, serve, users  # noqa: F401 - they register commands
from app.cli.common import app


def main() -> None:  # pragma: no cover - console script entry for `python -m app.cli`
    app()


__all__ = ["app", "main"]
