"""`outreach report`: the optimisation report as a self-contained HTML page, or a PDF printed offline by
the headless Chromium the pages' tests already use."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import UserError, app, console, friendly, parse_now, services

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _print_pdf(html: str, out: Path) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise UserError("--out: a PDF is printed by Chromium, which is not installed (apt-get install -y chromium); "
                        "or write the report as .html")
    with tempfile.TemporaryDirectory() as folder:
        page, pdf = Path(folder) / "report.html", Path(folder) / "report.pdf"
        page.write_text(html, encoding="utf-8")
        done = subprocess.run([browser, *CHROMIUM_FLAGS, "--no-pdf-header-footer", f"--print-to-pdf={pdf}",
                               page.as_uri()], capture_output=True, text=True, timeout=120, check=False)
        if not pdf.exists() or pdf.stat().st_size == 0:
            raise UserError(f"--out: Chromium could not print the PDF: {done.stderr.strip()[-300:]}")
        shutil.move(str(pdf), out)


@app.command()
@friendly
def report(
    since: Annotated[str, typer.Option(help="Start of the period, ISO date or date-time (UTC unless it says).")],
    out: Annotated[Path, typer.Option(help="Where to write it: .html (self-contained) or .pdf (printed offline by Chromium).")],
    now: Annotated[str | None, typer.Option(help="End of the period, ISO (default: now).")] = None,
) -> None:
    """The optimisation report: model quality and drift, adoption and conversion by week, team and rep,
    rejection reasons, template performance by segment, the compliance queue, and plain-language findings."""
    from app.reports.service import build, render_html

    start, end = parse_now(since, "--since"), parse_now(now)
    if start >= end:
        raise UserError(f"--since: {since!r} is not before the end of the period ({end:%Y-%m-%d %H:%M} UTC)")
    if out.suffix.lower() not in (".html", ".htm", ".pdf"):
        raise UserError(f"--out: {out.name!r} must end in .html or .pdf")
    if not out.parent.exists():
        raise UserError(f"--out: the folder {str(out.parent)!r} does not exist")
    with services().read() as session:
        built = build(session=session, since=start, now=end)
    html = render_html(built)
    if out.suffix.lower() == ".pdf":
        _print_pdf(html, out)
    else:
        # Written beside the target and moved into place: a reader never sees half a report.
        with tempfile.NamedTemporaryFile("w", encoding="utf-8", dir=out.parent, suffix=".tmp", delete=False) as part:
            part.write(html)
        os.replace(part.name, out)
    console.print(f"wrote {out} ({len(built.findings)} findings)")
    for finding in built.findings:
        console.print(f"- {finding}", highlight=False)
