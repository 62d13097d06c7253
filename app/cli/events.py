"""`outreach events import FILE`: a batch of canonical service events (CSV or JSON Lines), as the API takes them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import actor, console, errors, friendly, group, services

events_app = group("events", "Service events: import a batch exported from a help desk or chat tool.")


@events_app.command("import")
@friendly
def events_import(
    file: Annotated[Path, typer.Argument(help="Service events, CSV or JSON Lines (.jsonl): one per row, the fields "
                                              "of POST /api/events (event_id, event_type, timestamp, channel, message, "
                                              "user_id, email, account_id, session_id, ...).")],
    route: Annotated[bool, typer.Option("--route", help="Also classify and route them now (the worker's job), "
                                                        "instead of leaving them for the served product's worker.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as one JSON object.")] = False,
) -> None:
    """Every row is checked first: one bad row (named by its row and field) and nothing is written. Then all are
    stored in one transaction: each resolved to a customer and queued, or quarantined for an analyst. Rows
    already imported are skipped; a used event_id with other content is refused."""
    from app.cards import events
    from app.data.service_events import read_service_events
    from app.users.service import Role
    from app.users.tables import User

    app_services = services()
    records = read_service_events(file)
    now, settings = app_services.now(), app_services.settings
    operator = User(name=actor(), role=Role.ADMIN)  # whoever runs the CLI operates the product

    def store_all(session) -> list:  # noqa: ANN001
        return [events.accept_service_event(session=session, user=operator, record=record, now=now,
                                            skew_s=settings.event_clock_skew_s, hash_key=settings.identity_hash_key,
                                            match_threshold=settings.identity_match_threshold)
                for record in records]

    accepted = app_services.write(store_all)
    report = {"file": str(file), "rows": len(records),
              "imported": sum(not a.duplicate for a in accepted),
              "duplicates": sum(a.duplicate for a in accepted),
              "matched": sum(a.identity == "matched" and not a.duplicate for a in accepted),
              "quarantined": sum(a.identity == "quarantined" and not a.duplicate for a in accepted)}
    if route:
        from app.worker import Worker

        worker, routed = Worker(app_services), []
        with errors.status("classifying and routing"):
            while batch := worker.route_pending():
                routed += batch
        report["routed"] = {"cards": sum(" card " in f" {line}" for line in routed),
                            "suppressed": sum("suppressed" in line for line in routed),
                            "failed": sum(": failed" in line for line in routed), "events": len(routed)}
    if as_json:
        print(json.dumps(report))
        return
    for key, value in report.items():
        console.print(f"{key:>12}: {value}")
