"""`outreach review ...` and `outreach audit ...`: the guardrails, the compliance queue, the audit trail."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from app.cli.common import UserError, console, errors, friendly, group, services, settings

review_app = group("review", "Guardrails and the compliance queue: check, queue, approve, reject.")
audit_app = group("audit", "The hash-chained audit trail: verify, export.")


@review_app.command("check")
@friendly
def review_check(
    file: Annotated[Path, typer.Option("--file", help="JSON Lines: {id, channel, text, customer?, template_id?, subject?}.")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON line per message.")] = False,
) -> None:
    """Check past or proposed messages against the current policy: one verdict and the findings per message.

    Exit code 0 when every line was checked (whatever the verdicts), 1 when some lines were unreadable.
    """
    from app.drafting.facts import load_profile
    from app.review.batch import check_lines

    config = settings()
    try:
        raw_lines = file.read_bytes().splitlines()
    except OSError as exc:
        raise UserError(f"--file {file}: cannot be read ({exc.strerror})") from None
    # A line that is not UTF-8 text (binary junk) is reported as such; the other lines are still checked.
    lines = [line.decode("utf-8", errors="replace") if _utf8(line) else "\u0000not-utf8" for line in raw_lines]
    # A check needs no store unless one exists (a message may name a template of the library).
    has_store = bool(config.database_url) or (config.data_dir / "outreach.db").exists()
    reviewer = services().reviewer if has_store else _reviewer_without_store()
    profile = load_profile(config.company_profile)
    bad = 0

    def emit(session) -> int:  # noqa: ANN001
        count = 0
        for result in check_lines(lines, reviewer, session=session, profile=profile):
            count += "error" in result
            if as_json:
                print(json.dumps(result, ensure_ascii=False))
            elif "error" in result:
                errors.print(f"[red]line {result['line']}:[/red] {result['error']}", highlight=False)
            else:
                failed = "; ".join(f"{f['validator']}: {f['reason']}" for f in result["findings"])
                console.print(f"{result['id']}: [bold]{result['verdict']}[/bold] {failed}", highlight=False)
        return count

    if has_store:
        with services().read() as session:
            bad = emit(session)
    else:
        bad = emit(None)
    if bad:
        raise typer.Exit(1)


def _reviewer_without_store():  # noqa: ANN202 - app.review.checks.Reviewer, imported lazily
    """The reviewer `services().reviewer` would build, without opening (or creating) the store."""
    from app.library.index import default_embedder
    from app.review.checks import Reviewer

    config = settings()
    return Reviewer.from_folder(config.guardrails_dir, default_embedder(config.embedding_model), config.model_cache)


def _utf8(line: bytes) -> bool:
    try:
        line.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return b"\x00" not in line


@review_app.command("train")
@friendly
def review_train(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Train the guardrails' learned parts now (the judge and the injection detector fine-tune their encoders on
    guardrails/judge.yaml and injection.yaml): run it at deploy time, so no review waits for it. Cached by the
    training data in MODEL_CACHE_DIR: a second run, or one after an edit that changes no sentence, loads them."""
    import time

    config = settings()
    reviewer = _reviewer_without_store()
    trained = []
    for name, part in (("judge", reviewer.judge), ("injection", reviewer.injection)):
        if part is None:
            continue
        started = time.perf_counter()
        part.model()
        trained.append({"part": name, "encoder": part.encoder.name,
                        "seconds": round(time.perf_counter() - started, 1)})
    if as_json:
        print(json.dumps({"cache": str(config.model_cache), "trained": trained}))
        return
    for row in trained:
        console.print(f"[green]✓[/green] {row['part']}: {row['encoder']} ({row['seconds']} s)", highlight=False)


@review_app.command("queue")
@friendly
def review_queue(
    status: Annotated[str, typer.Option(help="pending, approved, rejected, withdrawn or all.")] = "pending",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """The compliance queue: drafts waiting for approval, with findings, reasons and data sources."""
    from app.review.service import queue

    with services().read() as session:
        items = [i.model_dump(mode="json") for i in queue(session=session, status=None if status == "all" else status)]
    if as_json:
        print(json.dumps(items, indent=2, ensure_ascii=False))
        return
    table = Table(title=f"Compliance queue ({status})", show_lines=True)
    for column in ("item", "v", "customer", "channel", "why it needs approval", "draft"):
        table.add_column(column, overflow="fold")
    for item in items:
        table.add_row(item["id"], str(item["version"]), item["customer_id"], item["channel"],
                      "\n".join(item["routing"]), item["body"][:300])
    console.print(table)


@review_app.command("approve")
@friendly
def review_approve(
    item: Annotated[str, typer.Argument(help="Queue item id.")],
    version: Annotated[int, typer.Option(min=1, max=2**31 - 1, help="The item version you reviewed (from the queue).")],
    by: Annotated[str, typer.Option("--by", help="Reviewer name.")],
    edit_file: Annotated[Path | None, typer.Option(help="A file with the edited text to approve instead.")] = None,
    comment: Annotated[str | None, typer.Option(help="Note for the audit trail.")] = None,
) -> None:
    """Approve a queued draft, or your edit of it (checked again, and stored as a new version)."""
    from app.review import service as review

    run = services()
    now = run.now()
    try:
        edited = edit_file.read_text(encoding="utf-8") if edit_file else None
    except (OSError, UnicodeDecodeError) as exc:
        raise UserError(f"--edit-file {edit_file}: cannot be read ({exc})") from None
    with run.read() as session:
        edit = review.prepare_approval(session=session, reviewer=run.reviewer, profile=run.profile, item_id=item,
                                       edited_body=edited, now=now)
    done = run.write(lambda s: review.approve(session=s, item_id=item, version=version, by=by, now=now, edit=edit,
                                              comment=comment))
    what = "your edit" if edit else "the draft"
    console.print(f"approved {done.id} (version {done.version}): {what} ({done.approved_draft_id}) may now be sent")


@review_app.command("reject")
@friendly
def review_reject(
    item: Annotated[str, typer.Argument(help="Queue item id.")],
    version: Annotated[int, typer.Option(min=1, max=2**31 - 1, help="The item version you reviewed (from the queue).")],
    by: Annotated[str, typer.Option("--by", help="Reviewer name.")],
    reason: Annotated[str, typer.Option(help="Reason code: prohibited_claim, missing_disclosure, personal_data, tone, "
                                             "inaccurate, off_brand, wrong_customer, other.")],
    comment: Annotated[str | None, typer.Option(help="What should change.")] = None,
) -> None:
    """Reject a queued draft with a reason code and a comment asking for changes."""
    from app.review import service as review

    run = services()
    now = run.now()
    done = run.write(lambda s: review.reject(session=s, item_id=item, version=version, by=by, reason_code=reason,
                                             comment=comment, now=now))
    console.print(f"rejected {done.id} ({done.reason_code}); the template ranks lower for similar customers")


@audit_app.command("verify")
@friendly
def audit_verify() -> None:
    """Recompute the hash chain: exit 0 when intact, 1 naming the first entry that was tampered with."""
    from app.audit.service import verify

    with services().read() as session:
        result = verify(session=session)
    if result.ok:
        console.print(f"audit trail intact: {result.entries:,} entries")
        return
    errors.print(f"[red]audit trail broken:[/red] {result.problem} ({result.entries:,} entries verified before it)",
                 highlight=False)
    raise typer.Exit(1)


@audit_app.command("export")
@friendly
def audit_export(out: Annotated[Path, typer.Option(help="JSON Lines file to write.")]) -> None:
    """Write every audit entry, with its hashes, as JSON Lines for auditors."""
    from app.audit.service import export

    with services().read() as session:
        count = export(session=session, path=out)
    console.print(f"{count:,} audit entries written to {out}")
