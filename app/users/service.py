"""Users and roles. Tokens are random, shown once, stored only as a SHA-256 hash, expire, and can be revoked."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta
from enum import StrEnum

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.errors import InvalidInput, NotFound
from app.users.tables import User


class Role(StrEnum):
    REP = "rep"
    CONTENT = "content"
    COMPLIANCE = "compliance"
    DATA_SCIENTIST = "data_scientist"
    # A system that posts events (a help desk, a CRM): its own token, no pages, no cards.
    INTEGRATION = "integration"
    ADMIN = "admin"


class UserView(BaseModel):
    """A user as lists show it (never the token)."""

    name: str
    role: Role
    rep_id: str | None
    team: str | None
    has_token: bool
    token_expires_at: datetime | None
    revoked_at: datetime | None


DEMO_USERS = [("demo-rep", Role.REP, "rep-01", "team-a"), ("demo-compliance", Role.COMPLIANCE, None, None),
              ("demo-content", Role.CONTENT, None, None), ("demo-ds", Role.DATA_SCIENTIST, None, None),
              ("demo-admin", Role.ADMIN, None, None)]


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def view(user: User) -> UserView:
    return UserView(name=user.name, role=user.role, rep_id=user.rep_id, team=user.team, has_token=bool(user.token_hash),
                    token_expires_at=user.token_expires_at, revoked_at=user.revoked_at)


def add(*, session: Session, name: str, role: str, now: datetime, rep_id: str | None = None,
        team: str | None = None, by: str = "system") -> UserView:
    if role not in set(Role):
        raise InvalidInput(f"{role!r} is not one of {', '.join(Role)}", field="role")
    if not name or len(name) > 64:
        raise InvalidInput("must be 1 to 64 characters", field="name")
    if role == Role.REP and not rep_id:
        raise InvalidInput("a rep needs the rep id their customers are assigned to (--rep-id)", field="rep_id")
    if session.get(User, name) is not None:
        raise InvalidInput(f"user {name!r} already exists", field="name")
    user = User(name=name, role=role, rep_id=rep_id, team=team, created_at=now)
    session.add(user)
    audit.record(session=session, actor=by, action="user_added", subject_type="user", subject_id=name, now=now,
                 details={"role": role, "rep_id": rep_id, "team": team})
    return view(user)


def _get(session: Session, name: str) -> User:
    user = session.get(User, name)
    if user is None:
        raise NotFound(f"no user {name!r}", field="name")
    return user


def issue_token(*, session: Session, name: str, now: datetime, ttl_days: float, by: str = "system") -> str:
    """A new API token for the user, valid `ttl_days` (the old one stops working)."""
    if ttl_days <= 0:
        raise InvalidInput("must be more than 0 days", field="expires_in_days")
    user = _get(session, name)
    token = secrets.token_urlsafe(24)
    user.token_hash, user.revoked_at = _hash(token), None
    user.token_expires_at = now + timedelta(days=ttl_days)
    audit.record(session=session, actor=by, action="token_issued", subject_type="user", subject_id=name, now=now,
                 details={"expires_at": user.token_expires_at.isoformat()})
    return token


def revoke(*, session: Session, name: str, now: datetime, by: str = "system") -> UserView:
    """The user's token stops working now."""
    user = _get(session, name)
    user.token_hash, user.revoked_at = None, now
    audit.record(session=session, actor=by, action="token_revoked", subject_type="user", subject_id=name, now=now)
    return view(user)


def by_token(*, session: Session, token: str, now: datetime) -> User | None:
    """The user a token belongs to, if it is current (not expired, not revoked)."""
    if not token:
        return None
    user = session.scalars(select(User).where(User.token_hash == _hash(token))).first()
    if user is None or (user.token_expires_at is not None and user.token_expires_at <= now):
        return None
    return user


def list_users(*, session: Session) -> list[UserView]:
    return [view(u) for u in session.scalars(select(User).order_by(User.name))]


def ensure_demo_users(*, session: Session, now: datetime, ttl_days: float) -> dict[str, str]:
    """The demo's five users, each with a fresh token (returned, never stored in clear)."""
    tokens = {}
    for name, role, rep_id, team in DEMO_USERS:
        if session.get(User, name) is None:
            add(session=session, name=name, role=role, now=now, rep_id=rep_id, team=team, by="demo")
        tokens[name] = issue_token(session=session, name=name, now=now, ttl_days=ttl_days, by="demo")
    return tokens
