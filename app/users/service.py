"""Users and roles. Tokens are random, shown once, and stored only as a SHA-256 hash."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from app.store.db import transaction
from app.store.tables import User


class Role(StrEnum):
    REP = "rep"
    CONTENT = "content"
    COMPLIANCE = "compliance"
    DATA_SCIENTIST = "data_scientist"
    ADMIN = "admin"


class UserError(ValueError):
    """A user request that cannot be done; the message names the field."""


DEMO_USERS = [("demo-rep", Role.REP, "rep-01", "team-a"), ("demo-compliance", Role.COMPLIANCE, None, None),
              ("demo-content", Role.CONTENT, None, None), ("demo-ds", Role.DATA_SCIENTIST, None, None),
              ("demo-admin", Role.ADMIN, None, None)]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def add(factory: sessionmaker[Session], name: str, role: str, *, now: datetime, rep_id: str | None = None,
        team: str | None = None) -> User:
    if role not in set(Role):
        raise UserError(f"role: {role!r} is not one of {', '.join(Role)}")
    if not name or len(name) > 64:
        raise UserError("name: must be 1 to 64 characters")
    if role == Role.REP and not rep_id:
        raise UserError("rep_id: a rep needs the rep id their customers are assigned to (--rep-id)")
    with transaction(factory) as session:
        if session.get(User, name) is not None:
            raise UserError(f"name: user {name!r} already exists")
        user = User(name=name, role=role, rep_id=rep_id, team=team, created_at=now)
        session.add(user)
        return user


def issue_token(factory: sessionmaker[Session], name: str) -> str:
    """A new API token for the user (the old one stops working)."""
    token = secrets.token_urlsafe(24)
    with transaction(factory) as session:
        user = session.get(User, name)
        if user is None:
            raise UserError(f"name: no user {name!r}")
        user.token_hash = _hash(token)
    return token


def by_token(factory: sessionmaker[Session], token: str) -> User | None:
    if not token:
        return None
    with factory() as session:
        return session.scalars(select(User).where(User.token_hash == _hash(token))).first()


def list_users(factory: sessionmaker[Session]) -> list[User]:
    with factory() as session:
        return list(session.scalars(select(User).order_by(User.name)))


def ensure_demo_users(factory: sessionmaker[Session], *, now: datetime) -> dict[str, str]:
    """The demo's five users, each with a fresh token (returned, never stored in clear)."""
    tokens = {}
    for name, role, rep_id, team in DEMO_USERS:
        with factory() as session:
            exists = session.get(User, name) is not None
        if not exists:
            add(factory, name, role, now=now, rep_id=rep_id, team=team)
        tokens[name] = issue_token(factory, name)
    return tokens
