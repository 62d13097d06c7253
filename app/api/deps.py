"""Named dependencies, so routes read like prose: `factory: StoreDep`, `index: IndexDep`."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.library.index import TemplateIndex
from app.store.db import open_store
from app.store.tables import User
from app.users import service as users

TOKEN_COOKIE = "outreach_token"


@lru_cache(maxsize=4)
def _store(url: str) -> sessionmaker[Session]:
    return open_store(url)


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> sessionmaker[Session]:
    return _store(request.app.state.settings.resolved_database_url)


def get_index_for(app) -> TemplateIndex:  # noqa: ANN001 - a FastAPI app
    """One index per app, opened on first use (the embedding model loads on the first query)."""
    state = app.state
    if getattr(state, "template_index", None) is None:
        state.template_index = TemplateIndex.configured(state.settings)
    return state.template_index


def get_index(request: Request) -> TemplateIndex:
    return get_index_for(request.app)


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[sessionmaker[Session], Depends(get_store)]
IndexDep = Annotated[TemplateIndex, Depends(get_index)]


def current_user(request: Request, factory: StoreDep) -> User:
    """The user behind `Authorization: Bearer TOKEN` (API) or the sign-in cookie (pages)."""
    header = request.headers.get("authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else request.cookies.get(TOKEN_COOKIE, "")
    user = users.by_token(factory, token)
    if user is None:
        raise HTTPException(status_code=401, detail="sign in: send Authorization: Bearer TOKEN "
                                                    "(`outreach users token NAME` prints one)",
                            headers={"WWW-Authenticate": "Bearer"})
    return user


def requires(*roles: str):  # noqa: ANN201 - a FastAPI dependency
    """Only these roles (and admin) pass; anyone else gets 403 naming the role needed."""
    def check(user: Annotated[User, Depends(current_user)]) -> User:
        if user.role not in roles and user.role != "admin":
            raise HTTPException(status_code=403, detail=f"this needs the {' or '.join(roles)} role; you are {user.role}")
        return user
    return check


def workbench(request: Request):  # noqa: ANN201 - the app's drafting and review services, built once
    from app.api.workbench import Workbench

    state = request.app.state
    if getattr(state, "workbench", None) is None:
        state.workbench = Workbench(state.settings, get_store(request), get_index(request))
    return state.workbench


CurrentUser = Annotated[User, Depends(current_user)]
Rep = Annotated[User, Depends(requires("rep"))]
Compliance = Annotated[User, Depends(requires("compliance"))]
Content = Annotated[User, Depends(requires("content"))]
Analyst = Annotated[User, Depends(requires("data_scientist", "compliance"))]
