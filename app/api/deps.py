"""Named dependencies, so routes read like prose: `factory: StoreDep`, `index: IndexDep`."""

from __future__ import annotations

from functools import lru_cache
from typing import Annotated

from fastapi import Depends, Request
from sqlalchemy.orm import Session, sessionmaker

from app.config import Settings
from app.library.index import TemplateIndex
from app.store.db import open_store


@lru_cache(maxsize=4)
def _store(url: str) -> sessionmaker[Session]:
    return open_store(url)


def get_settings_dep(request: Request) -> Settings:
    return request.app.state.settings


def get_store(request: Request) -> sessionmaker[Session]:
    return _store(request.app.state.settings.resolved_database_url)


def get_index(request: Request) -> TemplateIndex:
    """One index per app, opened on first use (the embedding model loads on the first query)."""
    state = request.app.state
    if getattr(state, "template_index", None) is None:
        state.template_index = TemplateIndex.configured(state.settings)
    return state.template_index


SettingsDep = Annotated[Settings, Depends(get_settings_dep)]
StoreDep = Annotated[sessionmaker[Session], Depends(get_store)]
IndexDep = Annotated[TemplateIndex, Depends(get_index)]
