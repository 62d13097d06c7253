"""The pages people open every morning: sign-in, the rep's inbox, the compliance queue, the metrics.

Server-rendered Jinja2 (autoescaped: nothing a customer or rep typed can run as script). Forms post
to the same services as the API, each with a fresh idempotency key, so a double click records once.
"""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from app.api.deps import TOKEN_COOKIE, StoreDep, workbench
from app.cards import metrics as card_metrics
from app.cards import service as cards
from app.domain import Outcome
from app.review import service as review
from app.store.tables import User
from app.users import service as users
from app.web.library import pages as templates

router = APIRouter(tags=["pages"], include_in_schema=False)
HOME = {"rep": "/inbox", "compliance": "/compliance", "content": "/library", "data_scientist": "/metrics",
        "admin": "/metrics"}
RATES = [("Adoption", "adoption_rate"), ("Execution", "execution_rate"), ("Conversion", "conversion_rate"),
         ("Reasons shown", "reason_display_rate"), ("Compliance approval", "compliance_approval_rate"),
         ("Feedback coverage", "feedback_coverage")]


def page_user(request: Request, factory: StoreDep) -> User | None:
    return users.by_token(factory, request.cookies.get(TOKEN_COOKIE, ""))


PageUser = Annotated[User | None, Depends(page_user)]


def _render(request: Request, name: str, user: User | None, **context: Any) -> HTMLResponse:
    return templates.TemplateResponse(request, name, {"user": user, **context})


def _back(path: str, message: str, error: bool = False) -> RedirectResponse:
    from urllib.parse import urlencode

    return RedirectResponse(f"{path}?{urlencode({'flash': message, 'error': int(error)})}", status_code=303)


@router.get("/", response_class=HTMLResponse)
def home(user: PageUser) -> RedirectResponse:
    return RedirectResponse(HOME.get(user.role, "/inbox") if user else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, user: PageUser) -> HTMLResponse:
    return _render(request, "login.html", user)


@router.post("/login")
def login(request: Request, factory: StoreDep, token: Annotated[str, Form(max_length=200)] = "") -> Response:
    user = users.by_token(factory, token.strip())
    if user is None:
        return _render(request, "login.html", None, error="That token is not valid.")
    response = RedirectResponse(HOME.get(user.role, "/inbox"), status_code=303)
    response.set_cookie(TOKEN_COOKIE, token.strip(), httponly=True, samesite="strict")
    return response


@router.get("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, user: PageUser, factory: StoreDep, flash: str | None = None, error: int = 0) -> Response:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    status = None if user.role != "rep" else "open"
    shown = cards.list_cards(factory, user, status=status, limit=50)
    if user.role == "rep":  # today's work: open cards, then what was adopted or sent but still needs a step
        shown += [c for s in ("adopted", "executed") for c in cards.list_cards(factory, user, status=s, limit=20)
                  if not c["outcome"]]
    return _render(request, "inbox.html", user, cards=shown, flash=flash, flash_error=bool(error),
                   key=lambda: uuid.uuid4().hex, reject_reasons=cards.REJECT_REASONS, outcomes=list(Outcome))


@router.post("/cards/{card_id}/{action}")
async def card_action(card_id: str, action: str, request: Request, user: PageUser, factory: StoreDep,
                      bench: Annotated[Any, Depends(workbench)]) -> Response:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    form = await request.form()
    payload: dict[str, Any] = {}
    if action == "adopt" and form.get("text") is not None:
        payload["text"] = str(form["text"]).replace("\r\n", "\n")
    if action == "reject":
        payload = {"reason": form.get("reason"), "note": form.get("note") or None}
    if action == "outcome":
        value = str(form.get("value") or "").strip()
        try:
            payload = {"outcome": form.get("outcome"), "value": float(value) if value else None}
        except ValueError:
            return _back("/inbox", "value: must be a number", error=True)
    try:
        card = bench.act(user, card_id, action, key=str(form.get("key") or ""), payload=payload)
    except (cards.CardError, cards.Conflict, cards.Forbidden, cards.NotFound) as exc:
        return _back("/inbox", str(exc), error=True)
    done = {"adopt": "Adopted: the script is on your clipboard", "reject": "Rejected, thank you for the reason",
            "send": "Marked as sent", "outcome": "Outcome recorded"}.get(action, action)
    if action == "adopt" and card["draft"] and card["draft"]["review_status"] == "needs_approval":
        done = "Adopted your edit: it waits for compliance approval before it can be sent"
    return _back("/inbox", f"{done} ({card['customer']['name'] or card['customer']['id']})")


def _segments(body: str, findings: list[dict[str, Any]]) -> list[tuple[str, str | None]]:
    """The draft cut into plain and highlighted pieces by the findings' spans (non-overlapping, in order)."""
    spans = sorted({(s["start"], s["end"], s["reason"]) for f in findings for s in f.get("spans", [])
                    if 0 <= s["start"] < s["end"] <= len(body)})
    out, at = [], 0
    for start, end, reason in spans:
        if start < at:
            continue
        out += [(body[at:start], None), (body[start:end], reason)]
        at = end
    return out + [(body[at:], None)]


@router.get("/compliance", response_class=HTMLResponse)
def compliance_page(request: Request, user: PageUser, factory: StoreDep, flash: str | None = None,
                    error: int = 0) -> Response:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    if user.role not in ("compliance", "admin"):
        return _render(request, "login.html", user, error="The compliance queue needs the compliance role.")
    items = review.queue(factory)
    for item in items:
        item["segments"] = _segments(item["body"], item["findings"])
    return _render(request, "compliance.html", user, items=items, flash=flash, flash_error=bool(error),
                   reason_codes=list(review.REASON_CODES))


@router.post("/compliance/{item_id}/{decision}")
async def compliance_decision(item_id: str, decision: str, request: Request, user: PageUser, factory: StoreDep,
                              bench: Annotated[Any, Depends(workbench)]) -> Response:
    if user is None or user.role not in ("compliance", "admin"):
        return RedirectResponse("/login", status_code=303)
    form = await request.form()
    try:
        version = int(str(form.get("version") or "0"))
        now = datetime.now(timezone.utc)
        if decision == "approve":
            text = str(form.get("text") or "").replace("\r\n", "\n")  # the form always sends the text
            review.approve(factory, bench.reviewer, bench.profile, item_id, version=version, by=user.name, now=now,
                           edited_body=text or None, comment=str(form.get("comment") or "") or None)
            message = f"Approved {item_id}"
        elif decision == "reject":
            review.reject(factory, item_id, version=version, by=user.name, reason_code=str(form.get("reason_code")),
                          comment=str(form.get("comment") or "") or None, now=now)
            message = f"Rejected {item_id}"
        else:
            return _back("/compliance", f"unknown decision {decision!r}", error=True)
    except (ValueError, review.Conflict) as exc:
        return _back("/compliance", str(exc), error=True)
    return _back("/compliance", message)


@router.get("/metrics", response_class=HTMLResponse)
def metrics_page(request: Request, user: PageUser, factory: StoreDep) -> Response:
    if user is None:
        return RedirectResponse("/login", status_code=303)
    if user.role not in ("data_scientist", "compliance", "admin"):
        return _render(request, "login.html", user, error="The metrics need the data scientist role.")
    return _render(request, "metrics.html", user, m=card_metrics.compute(factory, now=datetime.now(timezone.utc)),
                   rates=RATES)
