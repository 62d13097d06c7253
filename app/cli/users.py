"""`outreach users ...`: users, roles and API tokens."""

from __future__ import annotations

import json
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import actor, console, friendly, group, services, settings

users_app = group("users", "Users, roles and API tokens.")


@users_app.command("add")
@friendly
def users_add(
    name: Annotated[str, typer.Argument(help="User name.")],
    role: Annotated[str, typer.Option(help="rep, content, compliance, data_scientist, integration or admin.")],
    rep_id: Annotated[str | None, typer.Option(help="For a rep: the rep id customers are assigned to (owner_rep).")] = None,
    team: Annotated[str | None, typer.Option(help="For a rep: the team whose queue they share.")] = None,
) -> None:
    """Add a user with a role."""
    from app.users import service as users

    run = services()
    user = run.write(lambda s: users.add(session=s, name=name, role=role, now=run.now(), rep_id=rep_id, team=team,
                                         by=actor()))
    console.print(f"added {user.name} ({user.role}); `outreach users token {user.name}` prints an API token")


@users_app.command("list")
@friendly
def users_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every user with role, rep id, team and token state (never tokens)."""
    from app.users import service as users

    with services().read() as session:
        rows = [u.model_dump(mode="json") for u in users.list_users(session=session)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title="Users")
    for column in ("name", "role", "rep id", "team", "token"):
        table.add_column(column)
    for r in rows:
        state = (f"until {r['token_expires_at'][:10]}" if r["has_token"] and r["token_expires_at"] else
                 "yes" if r["has_token"] else "revoked" if r["revoked_at"] else "no")
        table.add_row(r["name"], r["role"], r["rep_id"] or "", r["team"] or "", state)
    console.print(table)


@users_app.command("token")
@friendly
def users_token(
    name: Annotated[str, typer.Argument(help="User name.")],
    expires_in_days: Annotated[float | None, typer.Option(help="Days until it expires (default: TOKEN_TTL_DAYS).")] = None,
) -> None:
    """Print a new API token for the user (the previous one stops working). Use it as `Authorization: Bearer TOKEN`."""
    from app.users import service as users

    run = services()
    ttl = settings().token_ttl_days if expires_in_days is None else expires_in_days
    print(run.write(lambda s: users.issue_token(session=s, name=name, now=run.now(), ttl_days=ttl, by=actor())))


@users_app.command("revoke")
@friendly
def users_revoke(name: Annotated[str, typer.Argument(help="User name.")]) -> None:
    """Revoke the user's token now (`outreach users token NAME` issues a new one)."""
    from app.users import service as users

    run = services()
    run.write(lambda s: users.revoke(session=s, name=name, now=run.now(), by=actor()))
    console.print(f"revoked the token of {name}")
