"""Rendering pages: one Jinja2 environment (autoescaped), the signed-in user from the cookie, the CSRF token
every form carries, and redirects with a flash message."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates

from app.http import csrf
from app.http.deps import TOKEN_COOKIE, ServicesDep, user_for
from app.reports.service import TEMPLATES as REPORT_TEMPLATES
from app.services import Services
from app.users.tables import User

# The pages, and the chart macros they share with the optimisation report.
pages = Jinja2Templates(directory=[str(Path(__file__).parent / "templates"), str(REPORT_TEMPLATES)])


def page_user(request: Request, services: ServicesDep) -> User | None:
    return user_for(services, request.cookies.get(TOKEN_COOKIE, ""))


PageUser = Annotated[User | None, Depends(page_user)]


def render(request: Request, services: Services, name: str, user: User | None, **context: Any) -> HTMLResponse:
    token = csrf.token_for(services.settings.secret_key, request.cookies.get(TOKEN_COOKIE, "")) if user else ""
    return pages.TemplateResponse(request, name, {"user": user, "csrf": token, **context})


def back(path: str, message: str, error: bool = False) -> RedirectResponse:
    return RedirectResponse(f"{path}?{urlencode({'flash': message, 'error': int(error)})}", status_code=303)


def to_login() -> RedirectResponse:
    return RedirectResponse("/login", status_code=303)


async def checked_form(request: Request, services: Services) -> dict[str, str]:
    """The posted form, after the CSRF check (a forged or stale form raises Forbidden)."""
    form = {k: str(v) for k, v in (await request.form()).items()}
    csrf.check(request, services.settings.secret_key, request.cookies.get(TOKEN_COOKIE, ""), form.get(csrf.FIELD))
    return form
