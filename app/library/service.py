"""The template library in the store: import, edit, approve, retire, with full version history.

Rules: a template's text never changes in place; every change is a new version. Editing an
approved template creates a draft version that needs approval again (the approved one stays live
until then). A retired template is never retrieved. Every change records who and when.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session, sessionmaker

from app.domain import POSITIVE_OUTCOMES, first_problem
from app.library.templates import TemplateFileError, TemplateSpec, TemplateStatus, parse_file
from app.store.db import transaction
from app.store.tables import Customer, Feedback, OutreachAttempt, Template, TemplateEvent, TemplateVersion

SKIPPED_FILES = {"README.md"}


class LibraryError(ValueError):
    """A library request that cannot be done as asked; the message says why."""


@dataclass
class LibraryImport:
    created: list[str] = field(default_factory=list)
    new_versions: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


def _version_row(spec: TemplateSpec, version: int, status: str, actor: str, now: datetime) -> TemplateVersion:
    return TemplateVersion(template_id=spec.id, version=version, title=spec.title, channel=spec.channel,
                           products=list(spec.products), stage=spec.stage, intents=list(spec.intents),
                           language=spec.language, status=status, sensitive=spec.sensitive, owner=spec.owner,
                           disclosures=list(spec.disclosures), body=spec.body, content_hash=spec.content_hash,
                           created_at=now, created_by=actor)


def spec_of(row: TemplateVersion) -> TemplateSpec:
    return TemplateSpec(id=row.template_id, title=row.title, channel=row.channel, products=row.products,
                        stage=row.stage, intents=row.intents, language=row.language, status=row.status,
                        sensitive=row.sensitive, owner=row.owner, version=row.version, disclosures=row.disclosures,
                        body=row.body)


def _log(session: Session, template_id: str, version: int | None, action: str, actor: str, now: datetime,
         note: str | None = None) -> None:
    session.add(TemplateEvent(template_id=template_id, version=version, action=action, actor=actor, at=now, note=note))


def _save(session: Session, spec: TemplateSpec, actor: str, now: datetime, report: LibraryImport) -> None:
    template = session.get(Template, spec.id)
    if template is None:
        template = Template(id=spec.id, latest_version=spec.version, retired=spec.status == TemplateStatus.RETIRED,
                            approved_version=spec.version if spec.status == TemplateStatus.APPROVED else None,
                            created_at=now, created_by=actor, updated_at=now)
        session.add(template)
        session.add(_version_row(spec, spec.version, spec.status, actor, now))
        session.flush()
        _log(session, spec.id, spec.version, "import", actor, now, f"status {spec.status}")
        report.created.append(spec.id)
        return
    latest = session.get(TemplateVersion, (spec.id, template.latest_version))
    if latest.content_hash != spec.content_hash:
        # A changed text is a new version; it is never live until someone approves it.
        version = max(template.latest_version + 1, spec.version)
        status = spec.status if spec.status in (TemplateStatus.DRAFT, TemplateStatus.IN_REVIEW) else TemplateStatus.DRAFT
        session.add(_version_row(spec, version, status, actor, now))
        template.latest_version, template.updated_at = version, now
        _log(session, spec.id, version, "edit", actor, now, "new version from file; needs approval")
        report.new_versions.append(spec.id)
    elif spec.status == TemplateStatus.RETIRED and not template.retired:
        _retire(session, template, actor, now, "retired in its file")
        report.retired.append(spec.id)
    else:
        report.unchanged.append(spec.id)


def import_directory(factory: sessionmaker[Session], folder: Path, *, actor: str, now: datetime) -> LibraryImport:
    """Import every template file of a folder. Each file is validated in full; a bad file is reported
    (file and field) and nothing of it is imported; the good ones go in, in one transaction."""
    if not folder.is_dir():
        raise LibraryError(f"{folder}: no such folder")
    report = LibraryImport()
    specs: dict[str, tuple[Path, TemplateSpec]] = {}
    for path in sorted(folder.glob("*.md")):
        if path.name in SKIPPED_FILES:
            continue
        try:
            spec = parse_file(path)
        except TemplateFileError as exc:
            report.errors.append(str(exc))
            continue
        if spec.id in specs:
            report.errors.append(f"{path}: id: {spec.id!r} is already used by {specs[spec.id][0].name}")
            continue
        if spec.id != path.stem:
            report.errors.append(f"{path}: id: {spec.id!r} must match the file name ({path.stem!r})")
            continue
        specs[spec.id] = (path, spec)
    with transaction(factory) as session:
        for _, spec in specs.values():
            _save(session, spec, actor, now, report)
    return report


def edit(factory: sessionmaker[Session], template_id: str, changes: dict[str, Any], *, actor: str,
         now: datetime) -> int:
    """A new draft version with the given fields changed; returns its number."""
    with transaction(factory) as session:
        template = _template(session, template_id)
        if template.retired:
            raise LibraryError(f"{template_id} is retired; create a new template instead")
        latest = session.get(TemplateVersion, (template_id, template.latest_version))
        not_editable = set(changes) - (set(TemplateSpec.model_fields) - {"id", "version", "status"})
        if not_editable:
            raise LibraryError(f"{template_id}: cannot edit field(s) {', '.join(sorted(not_editable))}")
        try:
            spec = TemplateSpec.model_validate({**spec_of(latest).model_dump(), **changes,
                                                "status": TemplateStatus.DRAFT, "version": template.latest_version + 1})
        except ValidationError as exc:
            raise LibraryError(f"{template_id}: {first_problem(exc)}") from None
        if spec.content_hash == latest.content_hash:
            raise LibraryError(f"{template_id}: nothing changed")
        session.add(_version_row(spec, spec.version, TemplateStatus.DRAFT, actor, now))
        template.latest_version, template.updated_at = spec.version, now
        _log(session, template_id, spec.version, "edit", actor, now)
        return spec.version


def _template(session: Session, template_id: str) -> Template:
    template = session.get(Template, template_id)
    if template is None:
        raise LibraryError(f"no template {template_id!r} (see `outreach library list`)")
    return template


def approve(factory: sessionmaker[Session], template_id: str, *, actor: str, now: datetime,
            version: int | None = None) -> int:
    """Make a version (default: the latest) the live one."""
    with transaction(factory) as session:
        template = _template(session, template_id)
        if template.retired:
            raise LibraryError(f"{template_id} is retired and stays retired; import it under a new id")
        number = version or template.latest_version
        row = session.get(TemplateVersion, (template_id, number))
        if row is None:
            raise LibraryError(f"{template_id} has no version {number} (latest: {template.latest_version})")
        if template.approved_version == number:
            raise LibraryError(f"{template_id} v{number} is already approved")
        row.status = TemplateStatus.APPROVED
        template.approved_version, template.updated_at = number, now
        _log(session, template_id, number, "approve", actor, now)
        return number


def _retire(session: Session, template: Template, actor: str, now: datetime, note: str | None) -> None:
    template.retired, template.updated_at = True, now
    latest = session.get(TemplateVersion, (template.id, template.latest_version))
    latest.status = TemplateStatus.RETIRED
    _log(session, template.id, template.latest_version, "retire", actor, now, note)


def retire(factory: sessionmaker[Session], template_id: str, *, actor: str, now: datetime, note: str | None = None) -> None:
    with transaction(factory) as session:
        template = _template(session, template_id)
        if template.retired:
            raise LibraryError(f"{template_id} is already retired")
        _retire(session, template, actor, now, note)


def status_of(template: Template, latest: TemplateVersion) -> str:
    if template.retired:
        return TemplateStatus.RETIRED
    if template.approved_version == template.latest_version:
        return TemplateStatus.APPROVED
    return latest.status


def list_templates(factory: sessionmaker[Session], status: str | None = None) -> list[dict[str, Any]]:
    with factory() as session:
        rows = session.execute(select(Template, TemplateVersion).join(
            TemplateVersion, (TemplateVersion.template_id == Template.id)
            & (TemplateVersion.version == Template.latest_version)).order_by(Template.id)).all()
    out = [{"id": t.id, "title": v.title, "channel": v.channel, "stage": v.stage, "products": v.products,
            "status": status_of(t, v), "latest_version": t.latest_version, "approved_version": t.approved_version,
            "sensitive": v.sensitive, "owner": v.owner, "updated_at": t.updated_at.isoformat()} for t, v in rows]
    return [row for row in out if status is None or row["status"] == status]


def live_versions(factory: sessionmaker[Session], template_id: str | None = None) -> list[TemplateSpec]:
    """The approved, not retired version of every template (or of one): all that may ever reach a draft."""
    statement = select(TemplateVersion).join(
        Template, (TemplateVersion.template_id == Template.id)
        & (TemplateVersion.version == Template.approved_version)).where(Template.retired.is_(False))
    if template_id is not None:
        statement = statement.where(Template.id == template_id)
    with factory() as session:
        rows = session.scalars(statement).all()
        return [spec_of(row).model_copy(update={"status": TemplateStatus.APPROVED}) for row in rows]


def performance(factory: sessionmaker[Session], template_ids: list[str], segment: str | None
                ) -> dict[str, tuple[int, int]]:
    """(contacts, positive outcomes) per template, within the customer's segment when given. A compliance
    rejection counts as a contact without a positive outcome: the template sinks for similar customers."""
    if not template_ids:
        return {}
    positive = [str(o) for o in POSITIVE_OUTCOMES]
    statement = (select(OutreachAttempt.template_id, func.count(),
                        func.sum(case((OutreachAttempt.outcome.in_(positive), 1), else_=0)))
                 .where(OutreachAttempt.template_id.in_(template_ids)).group_by(OutreachAttempt.template_id))
    if segment is not None:
        statement = statement.join(Customer, Customer.id == OutreachAttempt.customer_id).where(Customer.segment == segment)
    rejected = (select(Feedback.template_id, func.count()).where(Feedback.kind == "compliance_rejection",
                                                                 Feedback.template_id.in_(template_ids))
                .group_by(Feedback.template_id))
    if segment is not None:
        rejected = rejected.where(Feedback.segment == segment)
    with factory() as session:
        out = {tid: (int(n), int(s or 0)) for tid, n, s in session.execute(statement)}
        for tid, n in session.execute(rejected):
            contacts, wins = out.get(tid, (0, 0))
            out[tid] = (contacts + int(n), wins)
        return out


def show(factory: sessionmaker[Session], template_id: str) -> dict[str, Any]:
    """Everything about one template: versions, history of changes, usage and results by segment."""
    positive = [str(o) for o in POSITIVE_OUTCOMES]
    with factory() as session:
        template = _template(session, template_id)
        versions = session.scalars(select(TemplateVersion).where(TemplateVersion.template_id == template_id)
                                   .order_by(TemplateVersion.version)).all()
        events = session.scalars(select(TemplateEvent).where(TemplateEvent.template_id == template_id)
                                 .order_by(TemplateEvent.id)).all()
        usage = session.execute(
            select(Customer.segment, func.count(),
                   func.sum(case((OutreachAttempt.outcome.in_(positive), 1), else_=0)),
                   func.sum(case((OutreachAttempt.outcome == "converted", 1), else_=0)))
            .join(Customer, Customer.id == OutreachAttempt.customer_id)
            .where(OutreachAttempt.template_id == template_id).group_by(Customer.segment)).all()
        latest = versions[-1]
        return {
            "id": template.id, "status": status_of(template, latest), "latest_version": template.latest_version,
            "approved_version": template.approved_version, "retired": template.retired,
            "versions": [{"version": v.version, "status": v.status, "title": v.title, "created_at": v.created_at.isoformat(),
                          "created_by": v.created_by, "content_hash": v.content_hash} for v in versions],
            "current": spec_of(latest).model_dump(),
            "history": [{"at": e.at.isoformat(), "action": e.action, "version": e.version, "actor": e.actor,
                         "note": e.note} for e in events],
            "usage": [{"segment": seg, "contacts": int(n), "positive": int(p or 0), "converted": int(c or 0),
                       "positive_rate": round(int(p or 0) / int(n), 4) if n else None} for seg, n, p, c in usage],
        }
