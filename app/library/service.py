"""The template library in the store: import, edit, approve, retire, with full version history.

Rules: a template's text never changes in place; every change is a new version. Editing an
approved template creates a draft version that needs approval again (the approved one stays live
until then). A retired template is never retrieved. Every change records who and when, in the library's
history and in the audit chain. Four eyes: whoever wrote a version cannot approve it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from app.audit import service as audit
from app.data.tables import Customer, OutreachAttempt
from app.domain import POSITIVE_OUTCOMES, first_problem
from app.errors import Conflict, Forbidden, InvalidInput, NotFound
from app.feedback import service as feedback
from app.library.tables import Template, TemplateEvent, TemplateVersion
from app.library.templates import TemplateFileError, TemplateSpec, TemplateStatus, parse_file, vocabulary_of

SKIPPED_FILES = {"README.md"}


class LibraryError(InvalidInput):
    """A library request that cannot be done as asked (422); the message says why."""


@dataclass
class LibraryImport:
    created: list[str] = field(default_factory=list)
    new_versions: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    retired: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)


class TemplateSummary(BaseModel):
    id: str
    title: str
    channel: str
    stage: str
    products: list[str]
    status: str
    latest_version: int
    approved_version: int | None
    sensitive: bool
    owner: str
    updated_at: datetime


class VersionInfo(BaseModel):
    version: int
    status: str
    title: str
    created_at: datetime
    created_by: str
    content_hash: str


class HistoryEvent(BaseModel):
    at: datetime
    action: str
    version: int | None
    actor: str
    note: str | None


class SegmentUsage(BaseModel):
    segment: str | None
    contacts: int
    positive: int
    converted: int
    positive_rate: float | None


class TemplateDetail(BaseModel):
    id: str
    status: str
    latest_version: int
    approved_version: int | None
    retired: bool
    versions: list[VersionInfo]
    current: TemplateSpec
    history: list[HistoryEvent]
    usage: list[SegmentUsage]


def _version_row(spec: TemplateSpec, version: int, status: str, actor: str, now: datetime) -> TemplateVersion:
    return TemplateVersion(template_id=spec.id, version=version, title=spec.title, channel=spec.channel,
                           products=list(spec.products), stage=spec.stage, intents=list(spec.intents),
                           language=spec.language, status=status, sensitive=spec.sensitive, owner=spec.owner,
                           disclosures=list(spec.disclosures), body=spec.body, content_hash=spec.content_hash,
                           created_at=now, created_by=actor)


def spec_of(row: TemplateVersion) -> TemplateSpec:
    return TemplateSpec.model_construct(id=row.template_id, title=row.title, channel=row.channel, products=row.products,
                                        stage=row.stage, intents=row.intents, language=row.language, status=row.status,
                                        sensitive=row.sensitive, owner=row.owner, version=row.version,
                                        disclosures=row.disclosures, body=row.body)


def _log(session: Session, template_id: str, version: int | None, action: str, actor: str, now: datetime,
         note: str | None = None, content_hash: str | None = None) -> None:
    session.add(TemplateEvent(template_id=template_id, version=version, action=action, actor=actor, at=now, note=note))
    audit.record(session=session, actor=actor, action=f"template_{action}", subject_type="template",
                 subject_id=template_id, now=now, details={"version": version, "note": note, "content_hash": content_hash},
                 versions={"template": f"{template_id}@{version}"})


def _save(session: Session, spec: TemplateSpec, actor: str, now: datetime, report: LibraryImport) -> None:
    template = session.get(Template, spec.id)
    if template is None:
        template = Template(id=spec.id, latest_version=spec.version, retired=spec.status == TemplateStatus.RETIRED,
                            approved_version=spec.version if spec.status == TemplateStatus.APPROVED else None,
                            created_at=now, created_by=actor, updated_at=now)
        session.add(template)
        session.add(_version_row(spec, spec.version, spec.status, actor, now))
        session.flush()
        _log(session, spec.id, spec.version, "import", actor, now, f"status {spec.status}", spec.content_hash)
        report.created.append(spec.id)
        return
    latest = session.get(TemplateVersion, (spec.id, template.latest_version))
    if latest.content_hash != spec.content_hash:
        # A changed text is a new version; it is never live until someone approves it.
        version = max(template.latest_version + 1, spec.version)
        status = spec.status if spec.status in (TemplateStatus.DRAFT, TemplateStatus.IN_REVIEW) else TemplateStatus.DRAFT
        session.add(_version_row(spec, version, status, actor, now))
        template.latest_version, template.updated_at = version, now
        _log(session, spec.id, version, "edit", actor, now, "new version from file; needs approval", spec.content_hash)
        report.new_versions.append(spec.id)
    elif spec.status == TemplateStatus.RETIRED and not template.retired:
        _retire(session, template, actor, now, "retired in its file")
        report.retired.append(spec.id)
    else:
        report.unchanged.append(spec.id)


TAXONOMY_FILE = "intents.yaml"


def library_vocabulary(folder: Path) -> dict[str, frozenset[str]] | None:
    """The stages and intents templates in `folder` may name: its company taxonomy's (intents.yaml), or None
    (anything well-formed) for a folder without one."""
    from app.intents.taxonomy import Taxonomy, TaxonomyError

    if not (folder / TAXONOMY_FILE).is_file():
        return None
    try:
        taxonomy = Taxonomy.load(folder / TAXONOMY_FILE)
    except TaxonomyError as exc:
        raise LibraryError(str(exc), field="taxonomy") from None
    return vocabulary_of(taxonomy.stages, taxonomy.names())


def import_directory(*, session: Session, folder: Path, actor: str, now: datetime) -> LibraryImport:
    """Import every template file of a folder. Each file is validated in full; a bad file is reported
    (file and field) and nothing of it is imported; the good ones go in, in the caller's unit of work."""
    if not folder.is_dir():
        raise LibraryError(f"{folder}: no such folder", field="folder")
    report = LibraryImport()
    specs: dict[str, tuple[Path, TemplateSpec]] = {}
    vocabulary = library_vocabulary(folder)
    for path in sorted(folder.glob("*.md")):
        if path.name in SKIPPED_FILES:
            continue
        try:
            spec = parse_file(path, vocabulary)
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
    for _, spec in specs.values():
        _save(session, spec, actor, now, report)
    return report


EDITABLE = set(TemplateSpec.model_fields) - {"id", "version", "status"}


def edit(*, session: Session, template_id: str, changes: dict[str, Any], actor: str, now: datetime,
         vocabulary: dict[str, frozenset[str]] | None = None) -> int:
    """A new draft version with the given fields changed (checked as drafts render it, its stage and intents
    against the company taxonomy's `vocabulary`); returns its number."""
    template = _template(session, template_id)
    if template.retired:
        raise LibraryError(f"{template_id} is retired; create a new template instead", field="template_id")
    latest = session.get(TemplateVersion, (template_id, template.latest_version))
    not_editable = set(changes) - EDITABLE
    if not_editable:
        raise LibraryError(f"cannot be edited ({', '.join(sorted(not_editable))})", field=sorted(not_editable)[0])
    try:
        spec = TemplateSpec.model_validate({**spec_of(latest).model_dump(), **changes,
                                            "status": TemplateStatus.DRAFT, "version": template.latest_version + 1},
                                           context=vocabulary)
    except ValidationError as exc:
        raise LibraryError(first_problem(exc)) from None
    if spec.content_hash == latest.content_hash:
        raise LibraryError(f"{template_id}: nothing changed", field="body")
    session.add(_version_row(spec, spec.version, TemplateStatus.DRAFT, actor, now))
    template.latest_version, template.updated_at = spec.version, now
    _log(session, template_id, spec.version, "edit", actor, now, content_hash=spec.content_hash)
    return spec.version


def _template(session: Session, template_id: str) -> Template:
    template = session.get(Template, template_id)
    if template is None:
        raise NotFound(f"no template {template_id!r} (see `outreach library list`)", field="template_id")
    return template


def approve(*, session: Session, template_id: str, actor: str, now: datetime, version: int | None = None) -> int:
    """Make a version (default: the latest) the live one. Four eyes: its author cannot approve it."""
    template = _template(session, template_id)
    if template.retired:
        raise Conflict(f"{template_id} is retired and stays retired; import it under a new id", field="template_id")
    number = version or template.latest_version
    row = session.get(TemplateVersion, (template_id, number))
    if row is None:
        raise NotFound(f"{template_id} has no version {number} (latest: {template.latest_version})", field="version")
    if template.approved_version == number:
        raise Conflict(f"{template_id} v{number} is already approved", field="version")
    if row.created_by == actor:
        raise Forbidden(f"{template_id} v{number} was written by {actor}: someone else must approve it (four eyes)",
                        field="version")
    row.status = TemplateStatus.APPROVED
    template.approved_version, template.updated_at = number, now
    _log(session, template_id, number, "approve", actor, now, content_hash=row.content_hash)
    return number


def _retire(session: Session, template: Template, actor: str, now: datetime, note: str | None) -> None:
    template.retired, template.updated_at = True, now
    latest = session.get(TemplateVersion, (template.id, template.latest_version))
    latest.status = TemplateStatus.RETIRED
    _log(session, template.id, template.latest_version, "retire", actor, now, note)


def retire(*, session: Session, template_id: str, actor: str, now: datetime, note: str | None = None) -> None:
    template = _template(session, template_id)
    if template.retired:
        raise Conflict(f"{template_id} is already retired", field="template_id")
    _retire(session, template, actor, now, note)


def status_of(template: Template, latest: TemplateVersion) -> str:
    if template.retired:
        return TemplateStatus.RETIRED
    if template.approved_version == template.latest_version:
        return TemplateStatus.APPROVED
    return latest.status


def list_templates(*, session: Session, status: str | None = None) -> list[TemplateSummary]:
    rows = session.execute(select(Template, TemplateVersion).join(
        TemplateVersion, (TemplateVersion.template_id == Template.id)
        & (TemplateVersion.version == Template.latest_version)).order_by(Template.id)).all()
    out = [TemplateSummary(id=t.id, title=v.title, channel=v.channel, stage=v.stage, products=v.products,
                           status=status_of(t, v), latest_version=t.latest_version, approved_version=t.approved_version,
                           sensitive=v.sensitive, owner=v.owner, updated_at=t.updated_at) for t, v in rows]
    return [row for row in out if status is None or row.status == status]


def live_versions(*, session: Session, template_id: str | None = None) -> list[TemplateSpec]:
    """The approved, not retired version of every template (or of one): all that may ever reach a draft."""
    statement = select(TemplateVersion).join(
        Template, (TemplateVersion.template_id == Template.id)
        & (TemplateVersion.version == Template.approved_version)).where(Template.retired.is_(False))
    if template_id is not None:
        statement = statement.where(Template.id == template_id)
    rows = session.scalars(statement).all()
    return [spec_of(row).model_copy(update={"status": TemplateStatus.APPROVED}) for row in rows]


def template_version(*, session: Session, template_id: str, version: int) -> TemplateSpec:
    """One stored version, whatever its status (a draft names the version it was written from)."""
    row = session.get(TemplateVersion, (template_id, version))
    if row is None:
        raise NotFound(f"template {template_id!r} has no version {version}", field="template_id")
    return spec_of(row)


def performance(*, session: Session, template_ids: list[str], segment: str | None) -> dict[str, tuple[int, int]]:
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
    out = {tid: (int(n), int(s or 0)) for tid, n, s in session.execute(statement)}
    rejected = feedback.compliance_rejections_by_template(session=session, template_ids=template_ids, segment=segment)
    for tid, n in rejected.items():
        contacts, wins = out.get(tid, (0, 0))
        out[tid] = (contacts + n, wins)
    return out


def show(*, session: Session, template_id: str) -> TemplateDetail:
    """Everything about one template: versions, history of changes, usage and results by segment."""
    positive = [str(o) for o in POSITIVE_OUTCOMES]
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
    return TemplateDetail(
        id=template.id, status=status_of(template, latest), latest_version=template.latest_version,
        approved_version=template.approved_version, retired=template.retired,
        versions=[VersionInfo(version=v.version, status=v.status, title=v.title, created_at=v.created_at,
                              created_by=v.created_by, content_hash=v.content_hash) for v in versions],
        current=spec_of(latest),
        history=[HistoryEvent(at=e.at, action=e.action, version=e.version, actor=e.actor, note=e.note) for e in events],
        usage=[SegmentUsage(segment=seg, contacts=int(n), positive=int(p or 0), converted=int(c or 0),
                            positive_rate=round(int(p or 0) / int(n), 4) if n else None) for seg, n, p, c in usage])
