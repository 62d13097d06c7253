"""`outreach train`, `score`, `retrain`, `models ...`, `eval ...`: the models and their registry."""

from __future__ import annotations

import json
from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from app.cli.common import (UserError, actor, app, console, errors, friendly, group, parse_now, progress_bar, services,
                            settings)

models_app = group("models", "The model registry: list, promote, set a challenger, hold, roll back.")
eval_app = group("eval", "Offline evaluation of the models on your own data.")


@app.command()
@friendly
def train(
    holdout: Annotated[float, typer.Option(min=0.05, max=0.5, help="Share of the most recent attempts held out for testing.")] = 0.2,
    seed: Annotated[int | None, typer.Option(help="Random seed (default: SEED setting).")] = None,
    monotone: Annotated[list[str] | None, typer.Option(help="FEATURE=+1|-1 forces a monotone effect (repeatable); "
                                                          "default: pricing_question_14d=+1, upsell_interest_14d=+1.")] = None,
    now: Annotated[str | None, typer.Option(help="Training time to record, ISO (default: now).")] = None,
) -> None:
    """Train propensity and timing models on the store's history and register them as a new version.

    The first version becomes champion; later ones wait as candidates for `outreach models promote`.
    """
    from app.models.training import train_and_register

    config = settings()
    constraints = None
    if monotone:
        constraints = {}
        for item in monotone:
            name, _, sign = item.partition("=")
            if sign not in ("+1", "1", "-1", "0"):
                raise UserError(f"--monotone {item!r}: use FEATURE=+1 or FEATURE=-1")
            constraints[name] = int(sign)
    with errors.status("training propensity and timing models"):
        result = train_and_register(services().store, models_dir=config.models_dir, now=parse_now(now), actor=actor(),
                                    seed=config.seed if seed is None else seed, holdout_share=holdout,
                                    monotone=constraints, mlflow_uri=config.mlflow_tracking_uri,
                                    objectives_file=config.objectives_file)
    m = result.metrics
    console.print(f"registered {result.version} as {result.status}: held-out ROC AUC {m['roc_auc']:.3f}, "
                  f"PR AUC {m['pr_auc']:.3f}, top-decile lift {m['top_decile_lift']:.2f}, Brier {m['brier']:.4f} "
                  f"({m['n_train']:,} train / {m['n_test']:,} test attempts)")


class EngineChoice(str, Enum):
    in_process = "in-process"
    ray = "ray"


@app.command()
@friendly
def score(
    out: Annotated[Path | None, typer.Option(help="Parquet file for the decisions (default: DATA_DIR/exports/decisions-RUN.parquet).")] = None,
    chunk_size: Annotated[int | None, typer.Option(min=100, help="Customers per chunk (default: SCORE_CHUNK_SIZE).")] = None,
    now: Annotated[str | None, typer.Option(help="Decide as of this time, ISO (default: now).")] = None,
    top: Annotated[int, typer.Option(min=0, help="Show the best N recommendations.")] = 10,
    explain_top: Annotated[float | None, typer.Option(min=0.01, max=1.0, help="Explain (and offer) only this top share "
                                                      "by confidence; the rest is ranked (default: SCORE_EXPLAIN_TOP).")] = None,
    engine: Annotated[EngineChoice, typer.Option(help="Where chunks are decided: here, or on a Ray cluster (the `ray` "
                                                "extra) over Parquet partitions of the base.")] = EngineChoice.in_process,
    address: Annotated[str | None, typer.Option(help="With --engine ray: the cluster to use (`ray start --head` "
                                                     "prints it; \"auto\" finds a local one). Default: a local "
                                                     "cluster started for this run.")] = None,
) -> None:
    """Score every customer: who to contact, when, on which channel, with confidence and reasons.

    Decisions go to the store and to Parquet; every suppressed customer records the rule that did it. Either
    engine gives the same decisions for the same data and models (the same chunks, the same call per chunk).
    """
    from app.models.reasons import load_reason_table
    from app.models.scoring import score_all, top_decisions
    from app.policy.rules import load_policy

    from sqlalchemy import func, select

    from app.data.tables import Customer

    config = settings()
    factory = services().store
    as_of = parse_now(now)
    path = out or config.exports_dir / f"decisions-{as_of:%Y%m%d-%H%M%S}.parquet"
    with services().read() as session:
        total = session.scalar(select(func.count()).select_from(Customer)) or 0
    if not total:
        raise UserError("the store has no customers: run `outreach generate` or `outreach import` first")
    if address and engine is not EngineChoice.ray:
        raise UserError("--address names a Ray cluster: use it with --engine ray")
    chosen = None
    if engine is EngineChoice.ray:
        from app.models.distributed import RayEngine

        chosen = RayEngine(address=address, partitions_dir=config.data_dir / "partitions" / f"{as_of:%Y%m%d-%H%M%S}")
    with progress_bar(f"scoring customers ({engine.value})", total) as advance:
        summary = score_all(factory, now=as_of, policy=load_policy(config.contact_policy_file), engine=chosen,
                            reasons=load_reason_table(config.reason_templates_file),
                            challenger_share=config.challenger_share, chunk_size=chunk_size or config.score_chunk_size,
                            parquet_path=path, explain_top=explain_top or config.score_explain_top, progress=advance,
                            objectives=services().objectives)
    for problem in summary.load_errors:
        errors.print(f"[yellow]warning:[/yellow] model not loaded, ranking by rules instead: {problem}", highlight=False)
    for key, count in summary.stats.items():
        if key.startswith("model_error:"):
            _, version, error = key.split(":", 2)
            errors.print(f"[yellow]warning:[/yellow] model {version} failed on {count} chunk(s) ({error}); those "
                         "customers were ranked by rules (see the log)", highlight=False)
    with services().read() as session:
        print_decisions(top_decisions(session=session, run_id=summary.run_id, limit=top), summary)


def print_decisions(decisions: list, summary: Any, scripts: dict[int, str] | None = None) -> None:  # noqa: ANN001
    stats = summary.stats
    table = Table(title=f"Top recommendations ({summary.run_id})", show_lines=True)
    columns = ["#", "customer", "confidence", "channel", "when (customer's time)", "objective", "why", "flags"]
    for column in columns + (["script template"] if scripts is not None else []):
        table.add_column(column, overflow="fold")
    for rank, d in enumerate(decisions, start=1):
        confidence = f"{d.confidence:.0%}" if d.confidence is not None else f"score {d.score:.2f}"
        flags = [d.method] + (["needs confirmation (sensitive)"] if d.requires_confirmation else [])
        objective = (f"{d.impact['label']}\nworth {d.impact['value']:.2f} after the contact cost" if d.impact
                     else d.product or "")
        table.add_row(str(rank), d.customer_id, confidence, d.channel or "", d.slot_local or "", objective,
                      "\n".join(f"• {r['text']}" for r in d.reasons), ", ".join(flags),
                      *([scripts.get(d.id, "")] if scripts is not None else []))
    console.print(table)
    # The contact policy's rules and the objectives' (worth less than a contact, over the budget) apart.
    by_impact = {"rule:below_contact_cost", "rule:over_budget", "rule:no_objective_left"}
    named = lambda keys: ", ".join(f"{k.split(':', 1)[1]} {stats[k]:,}" for k in keys) or "none"  # noqa: E731
    policy_rules = sorted(k for k in stats if k.startswith("rule:") and k not in by_impact)
    impact_rules = sorted(k for k in stats if k in by_impact)
    console.print(f"{stats.get('customers', 0):,} customers scored: {stats.get('recommended', 0):,} recommended "
                  f"({stats.get('rule_based', 0):,} rule-based), {stats.get('suppressed_by_policy', 0):,} suppressed by "
                  f"policy ({named(policy_rules)}), {sum(stats[k] for k in impact_rules):,} not contacted by the "
                  f"objectives ({named(impact_rules)}), {stats.get('suppressed_no_reason', 0):,} without a reason, "
                  f"{stats.get('holdout', 0):,} held out to measure uplift. "
                  f"Champion: {summary.champion or 'none (rule-based)'}; challenger: {summary.challenger or 'none'}.")
    if summary.parquet_path:
        console.print(f"decisions written to the store and to {summary.parquet_path}")


@models_app.command("list")
@friendly
def models_list(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Every registered version with its status and held-out metrics."""
    from app.models import registry

    with services().read() as session:
        versions = registry.list_versions(session=session)
    if as_json:
        print(json.dumps([{"id": v.id, "status": v.status, "created_at": v.created_at.isoformat(),
                           "created_by": v.created_by, "metrics": v.metrics, "data": v.data_snapshot}
                          for v in versions], indent=2))
        return
    table = Table(title="Model versions")
    for column in ("version", "status", "created", "ROC AUC", "PR AUC", "lift@10%", "Brier", "trained on"):
        table.add_column(column)
    for v in versions:
        m = v.metrics
        table.add_row(v.id, v.status, f"{v.created_at:%Y-%m-%d %H:%M}", f"{m.get('roc_auc', float('nan')):.3f}",
                      f"{m.get('pr_auc', float('nan')):.3f}", f"{m.get('top_decile_lift', float('nan')):.2f}",
                      f"{m.get('brier', float('nan')):.4f}", f"{v.data_snapshot.get('attempts', 0):,} attempts")
    console.print(table)


@models_app.command("promote")
@friendly
def models_promote(
    version: Annotated[str, typer.Argument(help="Version id (see `outreach models list`).")],
    force: Annotated[bool, typer.Option(help="Promote even if its held-out metrics are worse than the champion's.")] = False,
    reason: Annotated[str | None, typer.Option(help="Why, for the registry log.")] = None,
) -> None:
    """Make a version the champion; the old champion is kept for rollback."""
    from app.models import registry

    with services().unit_of_work() as session:
        promoted = registry.promote(session=session, version_id=version, now=parse_now(None), actor=actor(),
                                    force=force, reason=reason)
    console.print(f"{promoted.id} is now the champion")


@models_app.command("challenger")
@friendly
def models_challenger(version: Annotated[str, typer.Argument(help="Version id to test against the champion.")]) -> None:
    """Put a version in the challenger arm of the A/B split (CHALLENGER_SHARE of customers)."""
    from app.models import registry

    with services().unit_of_work() as session:
        chosen = registry.set_challenger(session=session, version_id=version, now=parse_now(None), actor=actor())
    console.print(f"{chosen.id} is now the challenger for {settings().challenger_share:.0%} of customers")


@models_app.command("hold")
@friendly
def models_hold(
    reason: Annotated[str, typer.Option(help="Why (recorded in the registry log).")],
    by: Annotated[str, typer.Option("--by", help="Who decides.")],
    release: Annotated[bool, typer.Option(help="Lift the hold instead.")] = False,
) -> None:
    """A business override: stop (or allow again) automatic promotion by `outreach retrain`."""
    from app.models.retrain import hold

    with services().unit_of_work() as session:
        hold(session=session, actor=by, reason=reason, now=parse_now(None), release=release)
    console.print("hold lifted" if release else "held: `outreach retrain` will train and report but change nothing")


@app.command()
@friendly
def retrain(
    min_gain: Annotated[float, typer.Option(help="Held-out ROC AUC gain needed to become the challenger.")] = 0.0,
    min_live: Annotated[int, typer.Option(help="Outcomes per arm needed before the live split can promote.")] = 200,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Retrain on history plus feedback, compare with the champion offline and on the live A/B split, and
    deploy only what is better (a business hold stops changes). Schedule it, e.g. nightly with cron:
    `0 2 * * * cd /srv/outreach && .venv/bin/outreach retrain >> data/retrain.log 2>&1`."""
    from app.models.retrain import retrain as run

    config = settings()
    with errors.status("training on history and feedback"):
        report = run(services().store, models_dir=config.models_dir, now=parse_now(None), actor="retrain",
                     seed=config.seed, min_gain=min_gain, min_live=min_live, objectives_file=config.objectives_file)
    if as_json:
        print(json.dumps(report.__dict__, indent=2, default=str))
        return
    console.print(f"trained {report.version}: {report.offline}", highlight=False)
    console.print(f"live split: {report.live}", highlight=False)
    for action in report.actions:
        console.print(f"• {action}", highlight=False)


@models_app.command("rollback")
@friendly
def models_rollback() -> None:
    """Give the champion's place back to the version it replaced."""
    from app.models import registry

    with services().unit_of_work() as session:
        restored = registry.rollback(session=session, now=parse_now(None), actor=actor())
    console.print(f"rolled back: {restored.id} is the champion again")


@eval_app.command("propensity")
@friendly
def eval_propensity(
    data: Annotated[Path, typer.Option(help="A CSV file with one row per contact and a target column.")],
    target: Annotated[str, typer.Option(help="The target column.")],
    positive: Annotated[str, typer.Option(help="The target value that counts as a success.")],
    sep: Annotated[str, typer.Option(help="Field separator.")] = ",",
    drop: Annotated[list[str] | None, typer.Option(help="Column to leave out, e.g. one that leaks the outcome (repeatable).")] = None,
    test_size: Annotated[float, typer.Option(help="Share of rows held out (stratified).")] = 0.25,
    seed: Annotated[int, typer.Option(help="Random seed of the split and the model.")] = 0,
    tune: Annotated[int, typer.Option(min=0, help="Search this many settings by cross-validation on the training "
                                      "part before the final fit (0: the defaults).")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train the propensity model on a stratified split of any CSV and report how well it ranks and calibrates."""
    from app.models.evaluation import evaluate_propensity

    with errors.status("training and evaluating"):
        result = evaluate_propensity(data, sep=sep, target=target, positive=positive, drop=drop or [],
                                     test_size=test_size, seed=seed, tune_trials=tune)
    _print_result(result, as_json)


@eval_app.command("uplift")
@friendly
def eval_uplift(
    train: Annotated[Path, typer.Option(help="CSV of past outreach: features, the treatment column and the outcome.")],
    test: Annotated[Path, typer.Option(help="CSV with the same columns, scored and measured.")],
    treatment_col: Annotated[str, typer.Option(help="The column that says which arm a row was in.")],
    treatment: Annotated[str, typer.Option(help="The value of the treated arm.")],
    control: Annotated[str, typer.Option(help="The value of the control arm (no contact).")],
    outcome: Annotated[str, typer.Option(help="The outcome column (numeric, or yes/no).")],
    scores_out: Annotated[Path, typer.Option(help="Where to write the test rows, in order, with a column `uplift`.")],
    drop: Annotated[list[str] | None, typer.Option(help="Column to leave out of the features (repeatable).")] = None,
    model: Annotated[str, typer.Option(help="auto (chosen by cross-validated Qini on the training file), s, t or x.")] = "auto",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Train an uplift model (the change contact makes, per row) and measure uplift@30 % and Qini on the test file."""
    from app.models.uplift import evaluate_uplift

    with errors.status("training and evaluating the uplift model"):
        result = evaluate_uplift(train, test, treatment_col=treatment_col, treatment=treatment, control=control,
                                 outcome=outcome, drop=drop or [], scores_out=scores_out, model=model, seed=seed)
    _print_result(result, as_json)


@eval_app.command("policy")
@friendly
def eval_policy(
    train: Annotated[Path, typer.Option(help="CSV of past outreach: features, the treatment column and the KPI columns.")],
    test: Annotated[Path, typer.Option(help="CSV with the same columns; the policy is chosen and valued on it.")],
    treatment_col: Annotated[str, typer.Option(help="The column that says which treatment a row received.")],
    control: Annotated[str, typer.Option(help="The value meaning no contact; every other value is a treatment.")],
    objective: Annotated[str, typer.Option(help='The KPI formula to maximise, e.g. "visit + 10*conversion + 0.05*spend".')],
    choices_out: Annotated[Path, typer.Option(help="Where to write the test rows, in order, with `choice` and `predicted_impact`.")],
    budget: Annotated[float | None, typer.Option(help="At most this share of the test rows is contacted.")] = None,
    contact_cost: Annotated[float, typer.Option(help="The cost of one contact, in the formula's units.")] = 0.0,
    drop: Annotated[list[str] | None, typer.Option(help="Column to leave out of the features (repeatable).")] = None,
    model: Annotated[str, typer.Option(help="The uplift learner per treatment: s, t or x.")] = "t",
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
) -> None:
    """Choose per row the treatment with the best predicted impact on the formula net of the contact cost
    (or no contact), and value that policy beside sending everyone the best treatment and a propensity ranking."""
    from app.models.uplift import evaluate_policy

    with errors.status("training the uplift models and valuing the policy"):
        result = evaluate_policy(train, test, treatment_col=treatment_col, control=control, objective=objective,
                                 choices_out=choices_out, budget=budget, contact_cost=contact_cost, drop=drop or [],
                                 model=model, seed=seed)
    _print_result(result, as_json)


def _print_result(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        print(json.dumps(result))
        return
    for key, value in result.items():
        console.print(f"{key:>28}: {value:.4f}" if isinstance(value, float) else f"{key:>28}: {value}")
