"""`outreach changes triage --file REQUESTS.jsonl --json`: what each change request asks, its risk and route."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError

from app.cli.common import UserError, console, errors, friendly, group, services

changes_app = group("changes", "Customer change requests: what they ask, the assurance and risk, the route.")


def read_requests(path: Path) -> list:
    from app.changes.triage import ChangeRequest
    from app.domain import first_problem

    if not path.is_file():
        raise UserError(f"--file: {path}: no such file")
    requests, seen = [], set()
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except UnicodeDecodeError:
        raise UserError(f"--file: {path}: is not UTF-8 text") from None
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            request = ChangeRequest.model_validate_json(line)
        except ValidationError as exc:
            raise UserError(f"--file: {path}: line {number}: {first_problem(exc)}") from None
        if request.id in seen:
            raise UserError(f"--file: {path}: line {number}: id {request.id!r} appears twice")
        seen.add(request.id)
        requests.append(request)
    if not requests:
        raise UserError(f"--file: {path}: has no requests")
    return requests


@changes_app.command("triage")
@friendly
def changes_triage(
    file: Annotated[Path, typer.Option("--file", help="JSON Lines: id, channel, text and optional context "
                                                      "(recent_changes [{type, days_ago}], new_device, country, "
                                                      "usual_country).")],
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per request, one per line.")] = False,
) -> None:
    """Every line is checked first (a bad one is named and nothing is triaged); then, per request: the primary
    change type, all the changes with their extracted values (IBANs and phones masked), the confidence, the
    verification it needs, the risk (score, level, signals) and the route: auto, verify or review."""
    requests = read_requests(file)
    triage = services().changes
    with errors.status("reading the requests"):
        results = [triage.triage(request).as_json() for request in requests]
    if as_json:
        for result in results:
            print(json.dumps(result))
        return
    for r in results:
        kinds = ", ".join(c["type"] for c in r["changes"]) or r["change_type"]
        console.print(f"{r['id']:>10}  {kinds:<40} {r['verification']:<24} risk {r['risk']['level']:<6} "
                      f"{r['risk']['score']:.2f}  -> {r['route']}")
