"""`outreach library ...`: the script-template library and its vector index."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.table import Table

from app.cli.common import UserError, actor, console, errors, friendly, group, parse_now, services

library_app = group("library", "The script-template library: import, review, search.")


def sync_index() -> None:
    from app.library import service

    with services().read() as session:
        live = service.live_versions(session=session)
    report = services().index.sync(live)
    console.print(f"index synced: {report.added} added, {report.updated} updated, {report.removed} removed, "
                  f"{report.unchanged} unchanged")


@library_app.command("import")
@friendly
def library_import(
    folder: Annotated[Path, typer.Argument(help="Folder of template files (Markdown with YAML front matter).")],
    sync: Annotated[bool, typer.Option(help="Update the vector index afterwards.")] = True,
) -> None:
    """Validate and import every template file of a folder; a bad file is named and nothing of it imported.

    A changed approved template becomes a new draft version that needs approval again.
    """
    from app.library import service

    with services().unit_of_work() as session:
        report = service.import_directory(session=session, folder=folder, actor=actor(), now=parse_now(None))
    console.print(f"{len(report.created)} new, {len(report.new_versions)} new versions (drafts to approve), "
                  f"{len(report.retired)} retired, {len(report.unchanged)} unchanged, {len(report.errors)} rejected")
    for problem in report.errors:
        errors.print(f"  [red]rejected[/red] {problem}", highlight=False)
    if sync:
        sync_index()
    if report.errors:
        raise typer.Exit(1)


@library_app.command("list")
@friendly
def library_list(
    status: Annotated[str | None, typer.Option(help="Only this status: draft, in_review, approved, retired.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Every template with its status and versions."""
    from app.library import service

    with services().read() as session:
        rows = [r.model_dump(mode="json") for r in service.list_templates(session=session, status=status)]
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(title=f"Templates ({len(rows)})")
    for column in ("id", "title", "channel", "stage", "status", "latest", "live"):
        table.add_column(column)
    for r in rows:
        table.add_row(r["id"], r["title"], r["channel"], r["stage"], r["status"], f"v{r['latest_version']}",
                      f"v{r['approved_version']}" if r["approved_version"] else "-")
    console.print(table)


@library_app.command("show")
@friendly
def library_show(
    template_id: Annotated[str, typer.Argument(help="Template id.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """One template: its text, versions, who changed what, and its usage and results by segment."""
    from app.library import service

    with services().read() as session:
        info = service.show(session=session, template_id=template_id).model_dump(mode="json")
    if as_json:
        print(json.dumps(info, indent=2, default=str))
        return
    current = info["current"]
    console.print(f"[bold]{info['id']}[/bold] {current['title']} ({current['channel']}, {current['stage']}) - "
                  f"{info['status']}, latest v{info['latest_version']}, live "
                  f"{'v' + str(info['approved_version']) if info['approved_version'] else 'none'}")
    console.print(current["body"], markup=False, highlight=False)
    for event in info["history"]:
        console.print(f"  {event['at'][:19]}  {event['action']:<8} v{event['version']}  {event['actor']}"
                      + (f"  ({event['note']})" if event["note"] else ""), highlight=False)
    if info["usage"]:
        for u in info["usage"]:
            console.print(f"  used with {u['segment'] or 'no segment'}: {u['contacts']} contacts, {u['positive']} positive "
                          f"({u['positive_rate']:.0%}), {u['converted']} converted", highlight=False)
    else:
        console.print("  not used in any recorded contact yet")


@library_app.command("approve")
@friendly
def library_approve(
    template_id: Annotated[str, typer.Argument(help="Template id.")],
    version: Annotated[int | None, typer.Option(min=1, max=2**31 - 1, help="Version to approve (default: the latest).")] = None,
    by: Annotated[str | None, typer.Option("--by", help="Who approves (default: you); not the version's author.")] = None,
    sync: Annotated[bool, typer.Option(help="Update the vector index afterwards.")] = True,
) -> None:
    """Approve a version: it becomes the live text that retrieval may return. Four eyes: whoever wrote the
    version cannot approve it."""
    from app.library import service

    with services().unit_of_work() as session:
        number = service.approve(session=session, template_id=template_id, actor=by or actor(), now=parse_now(None),
                                 version=version)
    console.print(f"{template_id} v{number} approved")
    if sync:
        sync_index()


@library_app.command("retire")
@friendly
def library_retire(
    template_id: Annotated[str, typer.Argument(help="Template id.")],
    note: Annotated[str | None, typer.Option(help="Why, for the history.")] = None,
    sync: Annotated[bool, typer.Option(help="Update the vector index afterwards.")] = True,
) -> None:
    """Retire a template: it is never retrieved again."""
    from app.library import service

    with services().unit_of_work() as session:
        service.retire(session=session, template_id=template_id, actor=actor(), now=parse_now(None), note=note)
    console.print(f"{template_id} retired")
    if sync:
        sync_index()


@library_app.command("sync")
@friendly
def library_sync() -> None:
    """Make the vector index hold exactly the approved, live templates (idempotent)."""
    sync_index()


@library_app.command("search")
@friendly
def library_search(
    text: Annotated[str, typer.Argument(help="What the script should be about.")],
    channel: Annotated[str | None, typer.Option(help="email, sms, call or chat.")] = None,
    product: Annotated[str | None, typer.Option(help="Product key, e.g. pro.")] = None,
    stage: Annotated[str | None, typer.Option(help="new_lead, follow_up, upsell, renewal, win_back, change_request.")] = None,
    intent: Annotated[list[str] | None, typer.Option(help="Customer intent, e.g. pricing_question (repeatable).")] = None,
    segment: Annotated[str | None, typer.Option(help="Customer segment whose results count for ranking.")] = None,
    k: Annotated[int, typer.Option("-k", "--k", min=1, max=50, help="How many templates.")] = 5,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Search the approved templates, ranked by meaning and by measured results, with why each was chosen."""
    from app.library.retrieval import RetrievalRequest, retrieve

    try:
        request = RetrievalRequest(text=text, channel=channel, product=product, stage=stage, intents=intent or [],
                                   segment=segment, k=k)
    except ValidationError as exc:
        first = exc.errors()[0]
        raise UserError(f"--{first['loc'][0]}: {first['msg']}") from None
    with services().read() as session:
        results = retrieve(session=session, index=services().index, request=request)
    if as_json:
        print(json.dumps([r.model_dump() for r in results], indent=2))
        return
    table = Table(title=f"Templates for {text!r}")
    for column in ("#", "id", "version", "score", "title", "why"):
        table.add_column(column)
    for rank, r in enumerate(results, start=1):
        table.add_row(str(rank), r.id, f"v{r.version}", f"{r.score:.3f}", r.title, "\n".join(r.why))
    console.print(table)
