"""One family of errors for everything a user can get wrong or run into.

Each error carries the field it is about (when there is one) and the HTTP status it maps to; each edge
maps them once: the API to JSON (`detail` names the field), the pages to a flash message, the CLI to one
red line and exit code 2.
"""

from __future__ import annotations


class OutreachError(Exception):
    """A request that cannot be done as asked. The message says why, starting with the field when known."""

    status = 400

    def __init__(self, message: str, *, field: str | None = None) -> None:
        self.field = field
        super().__init__(f"{field}: {message}" if field and not message.startswith(f"{field}:") else message)


class InvalidInput(OutreachError, ValueError):
    """A value that is wrong: missing, malformed, out of range, or refused by a rule (422)."""

    status = 422


class NotFound(OutreachError, LookupError):
    """No such thing, or not one this user may see (404)."""

    status = 404


class Forbidden(OutreachError, PermissionError):
    """The user's role, team or ownership does not allow this (403)."""

    status = 403


class Conflict(OutreachError):
    """The current state does not allow this now: someone acted first, or the thing moved on (409)."""

    status = 409


class NotReleasable(Conflict):
    """A release refused: the text was not approved for sending, or a newer version replaced it (409)."""
