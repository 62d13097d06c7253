"""`outreach intents ...`: the intent classifier on the user's own data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import console, errors, friendly, group, services

intents_app = group("intents", "Intents of customer messages: evaluate the classifier on your own data.")


@intents_app.command("eval")
@friendly
def intents_eval(
    train: Annotated[Path, typer.Option(help="Labelled messages to train on (CSV or JSON Lines).")],
    test: Annotated[Path, typer.Option(help="Labelled messages to measure on (CSV or JSON Lines).")],
    text_col: Annotated[str, typer.Option(help="The column with the message text.")] = "text",
    label_col: Annotated[str, typer.Option(help="The column with the intent.")] = "intent",
    oos_label: Annotated[str, typer.Option(help="The label meaning out of scope (none of the intents).")] = "oos",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train the intent classifier on one file and report accuracy, out-of-scope recall, macro F1 and latency on another."""
    from app.intents.classifier import evaluate

    with errors.status("embedding, training and measuring"):
        result = evaluate(train, test, services().embedder, text_col=text_col, label_col=label_col,
                          oos_label=oos_label, seed=seed)
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        console.print(f"{key:>32}: {value:.4f}" if isinstance(value, float) else f"{key:>32}: {value}")


@intents_app.command("classify")
@friendly
def intents_classify(
    text: Annotated[str, typer.Argument(help="A customer's message.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """What the company's taxonomy (script_library/intents.yaml) reads in a message, and where it would route."""
    import dataclasses

    classifier = services().intents
    found = classifier.classify(text)
    spec = classifier.taxonomy.intents.get(found.intent)
    result = {**dataclasses.asdict(found), "route": spec.route if spec is not None else "none"}
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        console.print(f"{key:>18}: {value:.2f}" if isinstance(value, float) else f"{key:>18}: {value}")
