"""The pages people open every morning: sign-in, the rep's inbox, the compliance queue, the metrics.

Server-rendered Jinja2 (autoescaped: nothing a customer or rep typed can run as script). Forms post to the
same services as the API, each with a fresh idempotency key (a double click records once) and the CSRF
token of the signed-in user.
"""

from __future__ import annotations

import math
import uuid
from datetime import datetime, timedelta, timezone
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response

from app.cards import metrics as card_metrics
from app.cards import operations
from app.cards import service as cards
from app.cards.service import CardStatus
from app.changes import service as change_requests
from app.domain import Outcome
from app.errors import Forbidden, OutreachError
from app.http import csrf
from app.http.deps import TOKEN_COOKIE, ServicesDep, user_for
from app.reports import service as reports
from app.review import service as review
from app.users.service import Role
from app.web.render import PageUser, back, checked_form, render, to_login
from app.worker import confirm_if_applied

router = APIRouter(tags=["pages"], include_in_schema=False)
HOME = {Role.REP: "/inbox", Role.COMPLIANCE: "/compliance", Role.CONTENT: "/library", Role.DATA_SCIENTIST: "/metrics",
        Role.ADMIN: "/metrics"}
RATES = [("Adoption", "adoption_rate"), ("Execution", "execution_rate"), ("Conversion", "conversion_rate"),
         ("Reasons shown", "reason_display_rate"), ("Compliance approval", "compliance_approval_rate"),
         ("Feedback coverage", "feedback_coverage")]
DONE = {"adopt": "Adopted: the script is on your clipboard", "reject": "Rejected, thank you for the reason",
        "send": "Marked as sent", "outcome": "Outcome recorded"}


@router.get("/", response_class=HTMLResponse)
def home(user: PageUser) -> RedirectResponse:
    return RedirectResponse(HOME.get(user.role, "/inbox") if user else "/login", status_code=303)


@router.get("/login", response_class=HTMLResponse)
def login_form(request: Request, user: PageUser, services: ServicesDep) -> HTMLResponse:
    return render(request, services, "login.html", user)


@router.post("/login")
def login(request: Request, services: ServicesDep, token: Annotated[str, Form(max_length=200)] = "") -> Response:
    if not csrf.same_origin(request):
        return render(request, services, "login.html", None, error="Sign in from this site's own page.")
    user = user_for(services, token.strip())
    if user is None or user.role == Role.INTEGRATION:
        return render(request, services, "login.html", None, error="That token is not valid.")
    response = RedirectResponse(HOME.get(user.role, "/inbox"), status_code=303)
    response.set_cookie(TOKEN_COOKIE, token.strip(), httponly=True, samesite="strict",
                        secure=services.settings.environment == "production")
    return response


@router.get("/logout")
def logout() -> RedirectResponse:
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(TOKEN_COOKIE)
    return response


@router.get("/inbox", response_class=HTMLResponse)
def inbox(request: Request, user: PageUser, services: ServicesDep, flash: str | None = None, error: int = 0) -> Response:
    if user is None:
        return to_login()
    try:
        with services.read() as session:
            status = CardStatus.OPEN if user.role == Role.REP else None
            shown = cards.list_cards(session=session, user=user, status=status, limit=50)
            if user.role == Role.REP:  # today's work: open cards, then what was adopted or sent but needs a step
                shown += [c for s in (CardStatus.ADOPTED, CardStatus.EXECUTED)
                          for c in cards.list_cards(session=session, user=user, status=s, limit=20) if not c.outcome]
            alerts = card_metrics.rep_alerts(session=session, rep_id=user.rep_id, now=services.now())
    except Forbidden as exc:
        return render(request, services, "login.html", user, error=str(exc))
    return render(request, services, "inbox.html", user, cards=[c.model_dump(mode="json") for c in shown], flash=flash,
                  alerts=alerts if user.role == Role.REP else [],
                  flash_error=bool(error), key=lambda: uuid.uuid4().hex, reject_reasons=cards.REJECT_REASONS,
                  outcomes=list(Outcome))


def _card_action(services: Any, user: Any, card_id: str, action: str, form: dict[str, str]) -> cards.CardView:
    key, now, cap = form.get("key", ""), services.now(), services.settings.card_daily_cap
    if action == "adopt" and "text" in form:
        with services.read() as session:
            edit = cards.prepare_edit(session=session, user=user, card_id=card_id, text=form["text"],
                                      reviewer=services.reviewer, profile=services.profile, now=now)
        return services.write(lambda s: cards.adopt_edited(session=s, user=user, edit=edit, key=key, now=now))
    if action == "adopt":
        return services.write(lambda s: cards.adopt(session=s, user=user, card_id=card_id, key=key, now=now))
    if action == "reject":
        return services.write(lambda s: cards.reject(session=s, user=user, card_id=card_id, key=key,
                                                     reason=form.get("reason", ""), note=form.get("note") or None,
                                                     now=now, daily_cap=cap))
    if action == "send":
        return services.write(lambda s: cards.mark_sent(session=s, user=user, card_id=card_id, key=key, channel=None,
                                                        at=None, now=now, daily_cap=cap))
    if action == "outcome":
        raw = form.get("value", "").strip()
        try:
            value = float(raw) if raw else None
        except ValueError:
            value = math.nan  # refused below with the field named
        return services.write(lambda s: cards.record_outcome(session=s, user=user, card_id=card_id, key=key,
                                                             outcome=form.get("outcome", ""), value=value, now=now))
    raise OutreachError(f"unknown action {action!r}", field="action")


@router.post("/cards/{card_id}/{action}")
async def card_action(card_id: str, action: str, request: Request, user: PageUser, services: ServicesDep) -> Response:
    if user is None:
        return to_login()
    try:
        form = await checked_form(request, services)
        card = _card_action(services, user, card_id, action, form)
    except OutreachError as exc:
        return back("/inbox", str(exc), error=True)
    done = DONE.get(action, action)
    if action == "adopt" and card.draft and card.draft.review_status == review.ReviewStatus.NEEDS_APPROVAL:
        done = "Adopted your edit: it waits for compliance approval before it can be sent"
    return back("/inbox", f"{done} ({card.customer.name or card.customer.id})")


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


def _compliance_user(user: Any) -> bool:
    return user is not None and user.role in (Role.COMPLIANCE, Role.ADMIN)


@router.get("/compliance", response_class=HTMLResponse)
def compliance_page(request: Request, user: PageUser, services: ServicesDep, flash: str | None = None,
                    error: int = 0) -> Response:
    if user is None:
        return to_login()
    if not _compliance_user(user):
        return render(request, services, "login.html", user, error="The compliance queue needs the compliance role.")
    with services.read() as session:
        items = [i.model_dump(mode="json") for i in review.queue(session=session)]
        alerts = card_metrics.queue_alerts(session=session, now=services.now())
    for item in items:
        item["segments"] = _segments(item["body"], item["findings"])
    return render(request, services, "compliance.html", user, items=items, alerts=alerts, flash=flash, flash_error=bool(error),
                  reason_codes=list(review.REASON_CODES))


@router.post("/compliance/{item_id}/{decision}")
async def compliance_decision(item_id: str, decision: str, request: Request, user: PageUser,
                              services: ServicesDep) -> Response:
    if not _compliance_user(user):
        return to_login()
    now = services.now()
    try:
        form = await checked_form(request, services)
        raw_version = form.get("version", "")
        if not raw_version.isdigit() or not 1 <= int(raw_version) <= 2**31 - 1:
            raise OutreachError("must be the item version shown on the page", field="version")
        version, comment = int(raw_version), form.get("comment") or None
        if decision == "approve":
            with services.read() as session:
                edit = review.prepare_approval(session=session, reviewer=services.reviewer, profile=services.profile,
                                               item_id=item_id, edited_body=form.get("text") or None, now=now)
            services.write(lambda s: review.approve(session=s, item_id=item_id, version=version, by=user.name, now=now,
                                                    edit=edit, comment=comment))
            message = f"Approved {item_id}" + (" with your edit" if edit else "")
        elif decision == "reject":
            services.write(lambda s: review.reject(session=s, item_id=item_id, version=version, by=user.name,
                                                   reason_code=form.get("reason_code", ""), comment=comment, now=now))
            message = f"Rejected {item_id}"
        else:
            raise OutreachError(f"unknown decision {decision!r}", field="decision")
    except OutreachError as exc:
        return back("/compliance", str(exc), error=True)
    return back("/compliance", message)


@router.get("/changes", response_class=HTMLResponse)
def changes_page(request: Request, user: PageUser, services: ServicesDep, flash: str | None = None,
                 error: int = 0) -> Response:
    """The review queue of change requests held for a person: approve, reject with a reason, or ask for more
    verification."""
    if user is None:
        return to_login()
    if not _compliance_user(user):
        return render(request, services, "login.html", user, error="The change review queue needs the compliance role.")
    patterns = services.reviewer.policy.pii_patterns
    with services.read() as session:
        items = change_requests.held(session=session, user=user, pii_patterns=patterns)
    return render(request, services, "changes.html", user, items=items, flash=flash, flash_error=bool(error))


@router.post("/changes/{request_id}/{decision}")
async def change_decision(request_id: str, decision: str, request: Request, user: PageUser,
                          services: ServicesDep) -> Response:
    if not _compliance_user(user):
        return to_login()
    now = services.now()
    try:
        form = await checked_form(request, services)
        if decision in ("approve", "reject"):
            decided = services.write(lambda s: change_requests.decide(session=s, user=user, request_id=request_id,
                                                                      approve=decision == "approve",
                                                                      reason=form.get("reason") or None, now=now))
            confirm_if_applied(services, decided)
            message = f"{'Approved' if decision == 'approve' else 'Rejected'} {request_id}"
        elif decision == "verify":
            services.write(lambda s: change_requests.ask_verification(session=s, user=user, request_id=request_id,
                                                                      method=form.get("method", ""), now=now))
            message = f"{request_id} waits for its verification"
        else:
            raise OutreachError(f"unknown decision {decision!r}", field="decision")
    except OutreachError as exc:
        return back("/changes", str(exc), error=True)
    return back("/changes", message)


@router.get("/operations", response_class=HTMLResponse)
def operations_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    """The service-event flow for operators: intents by channel, the classifier against people's labels,
    misroutes, stale routed cards, time to first touch, the quarantine."""
    if user is None:
        return to_login()
    if user.role not in (Role.DATA_SCIENTIST, Role.COMPLIANCE, Role.ADMIN):
        return render(request, services, "login.html", user, error="Operations need the data scientist role.")
    with services.read() as session:
        figures = operations.compute(session=session, now=services.now())
    return render(request, services, "operations.html", user, o=figures)


@router.get("/metrics", response_class=HTMLResponse)
def metrics_page(request: Request, user: PageUser, services: ServicesDep) -> Response:
    if user is None:
        return to_login()
    if user.role not in (Role.DATA_SCIENTIST, Role.COMPLIANCE, Role.ADMIN):
        return render(request, services, "login.html", user, error="The metrics need the data scientist role.")
    now = services.now()
    since = now - timedelta(days=REPORT_DAYS)
    with services.read() as session:
        figures = card_metrics.compute(session=session, now=now, objectives=services.objectives[0]).model_dump(mode="json")
        audiences = reports.build(session=session, since=since, now=now).model_dump(mode="json")
    return render(request, services, "metrics.html", user, m=figures, r=audiences, rates=RATES,
                  report_since=since.date().isoformat())


REPORT_DAYS = 28  # the period the cockpit's download covers unless `since` says otherwise


@router.get("/metrics/report")
def report_download(request: Request, user: PageUser, services: ServicesDep, since: str | None = None) -> Response:
    """The optimisation report (as `outreach report` writes it), downloaded from the cockpit."""
    if user is None:
        return to_login()
    if user.role not in (Role.DATA_SCIENTIST, Role.COMPLIANCE, Role.ADMIN):
        return render(request, services, "login.html", user, error="The report needs the data scientist role.")
    now = services.now()
    try:
        start = datetime.fromisoformat(since) if since else now - timedelta(days=REPORT_DAYS)
    except ValueError:
        return PlainTextResponse(f"since: {since!r} is not an ISO date (e.g. 2026-11-01)", status_code=422)
    start = start if start.tzinfo else start.replace(tzinfo=timezone.utc)
    if start >= now:
        return PlainTextResponse(f"since: {since!r} is not before now", status_code=422)
    with services.read() as session:
        html = reports.render_html(reports.build(session=session, since=start, now=now))
    name = f"outreach-report-{start:%Y%m%d}-{now:%Y%m%d}.html"
    return HTMLResponse(html, headers={"Content-Disposition": f'attachment; filename="{name}"'})
