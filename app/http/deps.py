"""What the API and the pages share: the services, a read session, the signed-in user, role checks.

Named `Annotated` dependencies, so routes read like prose: `user: CurrentUser, services: ServicesDep`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Header, HTTPException, Request

from app.services import Services
from app.users import service as users
from app.users.service import Role
from app.users.tables import User

TOKEN_COOKIE = "outreach_token"


def get_services(request: Request) -> Services:
    return request.app.state.services


ServicesDep = Annotated[Services, Depends(get_services)]


def request_token(request: Request) -> str:
    header = request.headers.get("authorization", "")
    return header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(TOKEN_COOKIE, "")


def user_for(services: Services, token: str) -> User | None:
    with services.read() as session:
        user = users.by_token(session=session, token=token, now=services.now())
        if user is not None:
            session.expunge(user)
        return user


def current_user(request: Request, services: ServicesDep) -> User:
    """The user behind `Authorization: Bearer TOKEN` (API) or the sign-in cookie (pages)."""
    user = user_for(services, request_token(request))
    if user is None:
        raise HTTPException(status_code=401, detail="sign in: send Authorization: Bearer TOKEN "
                                                    "(`outreach users token NAME` prints one; tokens expire)",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


def requires(*roles: Role):  # noqa: ANN201 - a FastAPI dependency
    """Only these roles (and admin) pass; anyone else gets 403 naming the role needed."""
    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in roles and user.role != Role.ADMIN:
            raise HTTPException(status_code=403, detail=f"role: this needs the {' or '.join(roles)} role; "
                                                        f"you are {user.role}")
        return user
    return check


CurrentUser = Annotated[User, Depends(current_user)]
Compliance = Annotated[User, Depends(requires(Role.COMPLIANCE))]
Content = Annotated[User, Depends(requires(Role.CONTENT))]
Analyst = Annotated[User, Depends(requires(Role.DATA_SCIENTIST, Role.COMPLIANCE))]
# The library's read side: anyone signed in who works with scripts.
LibraryReader = Annotated[User, Depends(requires(Role.CONTENT, Role.COMPLIANCE, Role.REP, Role.DATA_SCIENTIST))]
IdempotencyKey = Annotated[str, Header(alias="Idempotency-Key", min_length=1, max_length=128,
                                       description="Any unique string per action; a retry with the same key is "
                                                   "answered with the first result and recorded once.")]
