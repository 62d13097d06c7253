"""Decide who to contact, when and on which channel: policy, timing, propensity and reasons, per chunk.

`decide` is a pure function over one chunk of customers; `score_all` walks the store chunk by
chunk (memory stays flat as the customer count grows), writes decisions to the store and to
Parquet, and records the run. With no live model, or a model that errors, customers are ranked by
transparent rules and the decision says "rule-based": never an empty screen, never a crash.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections import Counter
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from sqlalchemy import delete, select
from sqlalchemy.orm import Session, sessionmaker

from app.features.build import CONTEXT_PREFIX, DAY, FeatureBuilder, History, load_history
from app.features.pointintime import epoch_seconds
from app.models import drift, registry
from app.models.objectives import Objectives, achieved, choose, customer_rows, explain_runner_up
from app.models.reasons import ReasonTable, explain, render
from app.models.timing import CHANNELS, best_plans, describe_slot, next_occurrence
from app.models.training import ModelBundle
from app.policy.rules import ContactPolicy, apply_policy
from app.clock import utcnow
from app.errors import NotFound
from app.feedback import service as feedback
from app.store.db import reading
from app.store.db import unit_of_work
from app.data.tables import Customer
from app.models.tables import Decision, ScoreRun

log = logging.getLogger(__name__)
# Transparent fallback: each signal's weight, and the channel order when nothing else says better.
RULE_WEIGHTS = {"pricing_question_14d": 0.35, "upsell_interest_14d": 0.25, "days_since_any_product_view": 0.25,
                "days_since_service_conversation": 0.1, "days_since_last_contact": 0.05}
RULE_CHANNEL_ORDER = ["email", "call", "chat", "sms"]
RULE_LOCAL_HOUR = 10


@dataclass
class Models:
    champion: ModelBundle | None
    challenger: ModelBundle | None = None
    challenger_share: float = 0.0
    load_errors: list[str] = field(default_factory=list)


def preferred_product(history: History, now_s: int) -> pd.Series:
    """The product each customer looked at most in the last 30 days, else the one last offered."""
    ids = history.customers["id"]
    events = history.events
    times = epoch_seconds(events["occurred_at"])
    recent = events[(events["type"] == "product_view") & (times >= now_s - 30 * DAY) & (times < now_s)
                    & events["product"].notna()]
    viewed = recent.groupby(["customer_id", "product"]).size().reset_index(name="n") \
        .sort_values(["customer_id", "n", "product"], ascending=[True, False, True]) \
        .drop_duplicates("customer_id").set_index("customer_id")["product"]
    offered = history.attempts.dropna(subset=["product"]).sort_values("attempted_at") \
        .drop_duplicates("customer_id", keep="last").set_index("customer_id")["product"]
    # Object arrays throughout: pandas' fillna on object columns warns about a downcast it will stop doing.
    viewed, offered = viewed.reindex(ids).astype(object).to_numpy(), offered.reindex(ids).astype(object).to_numpy()
    return pd.Series(np.where(pd.notna(viewed), viewed, offered), dtype=object)


def _rule_plan(policy: ContactPolicy, allowed: np.ndarray, earliest: np.ndarray, zones: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray]:
    """Fallback plan: the first allowed channel in a fixed order, the next weekday at a set local hour."""
    order = [CHANNELS.index(c) for c in RULE_CHANNEL_ORDER]
    channel = np.full(len(allowed), -1)
    for j in reversed(order):
        channel = np.where(allowed[:, j], j, channel)
    hours = policy.allowed_hours()
    hour = RULE_LOCAL_HOUR if hours[RULE_LOCAL_HOUR] else int(np.flatnonzero(hours)[0])
    candidates = np.array([d * 24 + hour for d in range(5)])
    slots = np.stack([next_occurrence(np.full(len(allowed), c), earliest, zones).to_numpy() for c in candidates])
    return channel, slots.min(axis=0)


def rule_scores(rows: pd.DataFrame) -> pd.DataFrame:
    """Transparent fallback scores, as per-signal contributions so reasons come out the same way."""
    def decay(column: str, days: float) -> np.ndarray:
        return np.exp(-rows[column].fillna(np.inf).to_numpy() / days)

    parts = pd.DataFrame({
        "pricing_question_14d": RULE_WEIGHTS["pricing_question_14d"] * (rows["pricing_question_14d"] > 0),
        "upsell_interest_14d": RULE_WEIGHTS["upsell_interest_14d"] * (rows["upsell_interest_14d"] > 0),
        "days_since_any_product_view": RULE_WEIGHTS["days_since_any_product_view"] * decay("days_since_any_product_view", 7),
        "days_since_service_conversation":
            RULE_WEIGHTS["days_since_service_conversation"] * decay("days_since_service_conversation", 14),
        "days_since_last_contact": RULE_WEIGHTS["days_since_last_contact"]
            * (rows["days_since_last_contact"].fillna(np.inf) >= 14),
    }, index=rows.index).astype(np.float64)
    return parts


def decide(history: History, *, now: datetime, policy: ContactPolicy, models: Models, reasons: ReasonTable,
           rejections: pd.DataFrame | None = None, explain_top: float = 1.0,
           objectives: tuple[Objectives, str] | None = None, budget: int | None = None,
           drift_counts: dict | None = None) -> tuple[pd.DataFrame, Counter]:
    """One decision per customer of the chunk, and counters of what happened.

    With `objectives` and a model bundle that has uplift models, each recommended customer gets the objective
    with the largest predicted impact net of the contact cost (`choose_objectives`); `budget` caps how many of
    the chunk are recommended. `drift_counts` (feature -> bin counts) gathers what the champion saw, across chunks.

    `explain_top` < 1 explains (TreeSHAP + sentences, the costly part) only that top share of the
    chunk by confidence; the others keep confidence, channel and slot with status "ranked": not
    offered to reps in this run, since a recommendation without reasons is never shown."""
    stats: Counter = Counter()
    customers = history.customers.reset_index(drop=True)
    n = len(customers)
    now_s = int(pd.Timestamp(now).timestamp())
    ids = customers["id"]
    zones = customers["timezone"].fillna("UTC").to_numpy()
    outcome = apply_policy(policy, now_s=now_s, customer_ids=ids, do_not_contact=customers["do_not_contact"].to_numpy(),
                           sensitive=customers["sensitive"].to_numpy(), consents=history.consents,
                           attempts=history.attempts, rejections=rejections)
    builder = FeatureBuilder(history)
    product = preferred_product(history, now_s)
    arms = np.array([registry.assign_arm(c, models.challenger_share) if models.challenger else "champion"
                     for c in ids])

    out = pd.DataFrame({"customer_id": ids, "status": "suppressed", "method": "policy", "arm": None,
                        "model_version": None, "score": np.nan, "confidence": np.nan, "channel": None,
                        "slot_at": pd.Series(pd.NaT, index=range(n), dtype="datetime64[ns, UTC]"),
                        "slot_local": None, "product": product, "reasons": [[] for _ in range(n)],
                        "suppressed_by": outcome.closed_by, "requires_confirmation": outcome.requires_confirmation,
                        "objective": None, "objectives_version": None, "impact": None})
    open_rows = np.flatnonzero(~outcome.suppressed)
    stats["customers"] += n
    stats["suppressed_by_policy"] += n - len(open_rows)
    for rules in (outcome.closed_by[i] for i in np.flatnonzero(outcome.suppressed)):
        stats.update(f"rule:{r}" for r in rules)

    pending = {"champion": models.champion, "challenger": models.challenger}
    fallback = np.zeros(n, dtype=bool)
    for arm, bundle in pending.items():
        rows_idx = open_rows[arms[open_rows] == arm]
        if not len(rows_idx):
            continue
        if bundle is None:
            fallback[rows_idx] = True
            continue
        try:
            with_uplift = objectives is not None and bundle.uplift is not None
            if with_uplift:
                # The objective first: the offer the propensity model scores and explains is the one chosen.
                # What the uplift models read about each customer, kept for the runner-up facts below.
                uplift_rows = choose_objectives(out, rows_idx, bundle, objectives, history, builder, now_s)
            unjudged = _decide_with_model(out, rows_idx, bundle, arm, builder, customers, outcome, policy, zones,
                                          now_s, reasons, explain_top, drift_counts if arm == "champion" else None)
            fallback[unjudged] = True
            if with_uplift:
                contact_by_impact(out, rows_idx[~np.isin(rows_idx, unjudged)], objectives[0], stats)
                # Left to the rules: they rank without the uplift models, so no objective is claimed for them.
                out.loc[unjudged, ["objective", "impact"]] = None
                try:
                    name_runner_up_facts(out, uplift_rows, bundle, objectives[0], reasons)
                except Exception as exc:  # noqa: BLE001 - a missing extra sentence must not undo the decisions
                    log.exception("naming the runner-up objectives' facts failed")
                    stats[f"runner_up_fact_error:{type(exc).__name__}"] += 1
        except Exception as exc:  # noqa: BLE001 - a broken model must degrade to rules, not crash the run
            log.exception("model %s failed; falling back to rules", bundle.version)
            stats[f"model_error:{bundle.version}:{type(exc).__name__}"] += 1
            fallback[rows_idx] = True
    if fallback.any():
        _decide_with_rules(out, np.flatnonzero(fallback), builder, customers, outcome, policy, zones, now_s, reasons)

    if budget is not None:
        _spend_budget(out, budget, stats)
    recommended = out["status"] == "recommended"
    no_reason = (out["status"] == "suppressed") & out["suppressed_by"].map(lambda r: r == ["no_reason"])
    stats["recommended"] += int(recommended.sum())
    stats["ranked_unexplained"] += int((out["status"] == "ranked").sum())
    stats["suppressed_no_reason"] += int(no_reason.sum())
    stats["rule_based"] += int((recommended & (out["method"] == "rule-based")).sum())
    return out, stats


def _finish(out: pd.DataFrame, idx: np.ndarray, channel: np.ndarray, slot: pd.Series, zones: np.ndarray,
            policy: ContactPolicy, now_s: int) -> np.ndarray:
    """Write channel and slot; returns which of `idx` have a slot inside the horizon."""
    horizon = pd.Timestamp(now_s + policy.horizon_days * DAY, unit="s", tz="UTC")
    slot = pd.Series(pd.to_datetime(slot, utc=True).to_numpy(), index=idx)
    inside = (slot.notna() & (slot <= horizon) & (channel >= 0)).to_numpy()
    for i in idx[~inside]:
        out.at[i, "suppressed_by"] = [*out.at[i, "suppressed_by"], "no_slot_in_horizon"]
    keep = idx[inside]
    out.loc[keep, "channel"] = np.array(CHANNELS, dtype=object)[channel[inside]]
    out.loc[keep, "slot_at"] = slot[inside]
    out.loc[keep, "slot_local"] = [describe_slot(s, z) for s, z in zip(slot[inside], zones[keep])]
    return inside


def _attach_reasons(out: pd.DataFrame, idx: np.ndarray, rows: pd.DataFrame, contributions: pd.DataFrame,
                    table: ReasonTable) -> None:
    for i, reasons in zip(idx, explain(rows, contributions, table)):
        if reasons:
            out.at[i, "reasons"] = reasons
            out.at[i, "status"] = "recommended"
            out.at[i, "suppressed_by"] = []
        else:
            # A recommendation a rep cannot understand is not shown.
            out.at[i, "suppressed_by"] = ["no_reason"]


def _decide_with_model(out: pd.DataFrame, idx: np.ndarray, bundle: ModelBundle, arm: str, builder: FeatureBuilder,
                       customers: pd.DataFrame, outcome: Any, policy: ContactPolicy, zones: np.ndarray, now_s: int,
                       reasons: ReasonTable, explain_top: float = 1.0, drift_counts: dict | None = None) -> np.ndarray:
    """Decide for `idx` with the model; returns the customers it cannot judge (left for the rules). Counts the
    rows' features into the model's drift bins when `drift_counts` is given."""
    timing = bundle.timing
    # The timing grid depends only on the customer's group, and the choice on the group and which
    # channels are open: solve each distinct (group, open channels) once, not once per customer.
    frame = customers.loc[idx, timing.groups].reset_index(drop=True)
    if timing.groups:
        group_of, _ = pd.MultiIndex.from_frame(frame.astype("string").fillna("<missing>")).factorize()
    else:
        group_of = np.zeros(len(idx), dtype=np.int64)
    first_of_group = pd.Series(np.arange(len(idx))).groupby(group_of).first().to_numpy()
    grid = timing.grid(frame.iloc[first_of_group].reset_index(drop=True))
    # A channel the model never saw in training cannot be judged by it: those customers go to rules.
    known = np.isin(CHANNELS, timing.categories.get("channel", CHANNELS))
    allowed = outcome.allowed[idx] & known
    judged = allowed.any(axis=1)
    unjudged = idx[~judged]
    idx, allowed, group_of = idx[judged], allowed[judged], group_of[judged]
    if not len(idx):
        return unjudged
    open_bits = allowed @ (1 << np.arange(allowed.shape[1]))
    _, pair_of = np.unique(group_of * (1 << allowed.shape[1]) + open_bits, return_inverse=True)
    pair_first = pd.Series(np.arange(len(idx))).groupby(pair_of).first().to_numpy()
    channel, how, _ = best_plans(grid[group_of[pair_first]], allowed[pair_first], policy.allowed_hours_of_week())
    channel, how = channel[pair_of], how[pair_of]
    slot = next_occurrence(how, outcome.earliest[idx], zones[idx])
    inside = _finish(out, idx, channel, slot, zones, policy, now_s)
    idx = idx[inside]
    if not len(idx):
        return unjudged
    rows = builder.rows(customers.loc[idx, "id"], out.loc[idx, "slot_at"], out.loc[idx, "channel"],
                        out.loc[idx, "product"])
    # Campaign context (a past attempt's own attributes, e.g. the bank file's contact counts) is
    # unknown for a contact not yet made: the model sees it as missing, as it does any gap.
    for name in bundle.propensity.features:
        if name.startswith(CONTEXT_PREFIX) and name not in rows:
            rows[name] = np.nan
    if drift_counts is not None and bundle.reference:
        for name, bins in bundle.reference.items():
            if name in rows:
                drift_counts[name] = drift_counts.get(name, 0) + drift.bin_counts(rows[name], bins["edges"])
    prepared = bundle.propensity.prepare(rows)
    raw = bundle.propensity.raw_score(prepared, prepared=True)
    confidence = bundle.propensity.calibrate(raw)
    out.loc[idx, ["method", "arm", "model_version"]] = ["model", arm, bundle.version]
    out.loc[idx, "confidence"] = confidence
    out.loc[idx, "score"] = confidence
    explained = np.ones(len(idx), dtype=bool)
    if explain_top < 1.0:
        explained = confidence >= np.quantile(confidence, 1.0 - explain_top)
        out.loc[idx[~explained], "status"] = "ranked"
        for i in idx[~explained]:
            out.at[i, "suppressed_by"] = []  # it still lists the channels policy closed: not a suppression
    rows, prepared = rows[explained], prepared[explained]
    _attach_reasons(out, idx[explained], rows, bundle.propensity.contributions(prepared, prepared=True), reasons)
    return unjudged


def _describe_fact(feature: str, row: dict[str, Any], best: str, other: str, *, reasons: ReasonTable,
                   products: dict[str, str | None]) -> str | None:
    """A customer fact in a rep's words: how recently each offer's product was viewed, a reason sentence from
    the reason table, or the feature and its value."""
    def viewed(product: str | None) -> str:
        days = row.get(f"days_since_viewed_{product}")
        name = reasons.product_name(product)
        if days is None or pd.isna(days):
            return f"{name} never"
        count = int(round(float(days)))
        return f"{name} {count} day{'' if count == 1 else 's'} ago"

    if feature == "days_since_viewed_offer":
        return f"the customer last viewed {viewed(products.get(best))}, {viewed(products.get(other))}"
    if feature.startswith("days_since_viewed_"):
        product = feature.removeprefix("days_since_viewed_")
        seen = viewed(product)
        return (f"the customer never viewed {reasons.product_name(product)}" if seen.endswith(" never")
                else f"the customer last viewed {seen}")
    value = row.get(feature)
    template = reasons.reasons.get(feature)
    # Context sentences ("customers in X respond well") praise a group; here a plain fact reads truer.
    sentence = render(template, feature, value, row, reasons) if template and not template.context else None
    if sentence:
        return f"the customer {sentence}"
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return f"{feature.replace('_', ' ')}: unknown"
    if isinstance(value, (int, float, np.integer, np.floating)):
        shown = f"{float(value):.0f}" if feature.startswith("days_") or abs(float(value)) >= 10 else f"{float(value):.3g}"
    else:
        shown = str(value).replace("_", " ")
    return f"{feature.replace('_', ' ')}: {shown}"


def choose_objectives(out: pd.DataFrame, idx: np.ndarray, bundle: ModelBundle, objectives: tuple[Objectives, str],
                      history: History, builder: FeatureBuilder, now_s: int) -> pd.DataFrame:
    """Give each customer of `idx` the objective with the best predicted impact net of the contact cost (and
    the product it is about); a customer for whom every objective is already achieved gets none. Returns the
    rows the uplift models read, indexed like `out`."""
    config, version = objectives
    ids = out.loc[idx, "customer_id"].reset_index(drop=True)
    rows = customer_rows(builder, ids, pd.Series([pd.Timestamp(now_s, unit="s", tz="UTC")] * len(ids)))
    met = achieved(config, history, builder, builder.code.get_indexer(ids), now_s)
    products = {o.id: o.product for o in config.objectives}
    for i, choice in zip(idx, choose(config, bundle.uplift, rows, met)):
        out.at[i, "objectives_version"] = version
        if choice is not None:
            out.at[i, "objective"], out.at[i, "impact"] = choice["objective"], choice
            out.at[i, "product"] = products.get(choice["objective"]) or out.at[i, "product"]
    return rows.set_axis(idx)


def name_runner_up_facts(out: pd.DataFrame, rows: pd.DataFrame, bundle: ModelBundle, config: Objectives,
                         reasons: ReasonTable) -> None:
    """For the customers who will be contacted, the customer fact behind the runner-up objective's loss (two
    TreeSHAP passes each, so not spent on customers nobody will see)."""
    idx = rows.index.to_numpy()
    chosen = idx[((out.loc[idx, "status"] == "recommended") & out.loc[idx, "impact"].notna()).to_numpy()]
    if not len(chosen):
        return
    products = {o.id: o.product for o in config.objectives}
    explain_runner_up(bundle.uplift, rows.loc[chosen], list(out.loc[chosen, "impact"]),
                      partial(_describe_fact, reasons=reasons, products=products))


def contact_by_impact(out: pd.DataFrame, idx: np.ndarray, config: Objectives, stats: Counter) -> None:
    """Of the recommended customers in `idx`: rank by the difference contact makes; nobody whose best impact is
    below the contact cost is contacted, nor anyone with no objective left (every one achieved, or none the
    uplift models know: an objective added after training needs a retrain); a stable random share is held out."""
    rows = idx[(out.loc[idx, "status"] == "recommended").to_numpy()]
    impacts = out.loc[rows, "impact"]
    value = np.array([np.nan if i is None else i["value"] for i in impacts], dtype=np.float64)
    none_left, below = rows[np.isnan(value)], rows[value <= 0]
    worth = rows[value > 0]
    # Ranked by the difference contact makes, not by the likeliest reply.
    out.loc[rows[~np.isnan(value)], "score"] = value[~np.isnan(value)]
    held = worth[[registry.in_share(c, config.holdout_share, salt="holdout-v1") for c in out.loc[worth, "customer_id"]]]
    for rows_of, status, rule in ((none_left, "suppressed", "no_objective_left"),
                                  (below, "suppressed", "below_contact_cost"), (held, "holdout", "holdout")):
        out.loc[rows_of, "status"] = status
        out.loc[rows_of, "suppressed_by"] = pd.Series([[rule] for _ in rows_of], index=rows_of, dtype=object)
        stats["holdout" if rule == "holdout" else f"rule:{rule}"] += len(rows_of)


def _spend_budget(out: pd.DataFrame, budget: int, stats: Counter) -> None:
    """Keep the `budget` recommendations with the largest scores; the rest are suppressed as over budget."""
    recommended = np.flatnonzero((out["status"] == "recommended").to_numpy())
    if len(recommended) <= budget:
        return
    order = recommended[np.argsort(-out["score"].to_numpy()[recommended], kind="stable")]
    for i in order[budget:]:
        out.at[i, "status"], out.at[i, "suppressed_by"] = "suppressed", ["over_budget"]
    stats["rule:over_budget"] += len(order) - budget


def _decide_with_rules(out: pd.DataFrame, idx: np.ndarray, builder: FeatureBuilder, customers: pd.DataFrame,
                       outcome: Any, policy: ContactPolicy, zones: np.ndarray, now_s: int, reasons: ReasonTable) -> None:
    channel, slot = _rule_plan(policy, outcome.allowed[idx], outcome.earliest[idx], zones[idx])
    inside = _finish(out, idx, channel, pd.Series(slot), zones, policy, now_s)
    idx = idx[inside]
    if not len(idx):
        return
    rows = builder.rows(customers.loc[idx, "id"], out.loc[idx, "slot_at"], out.loc[idx, "channel"],
                        out.loc[idx, "product"])
    parts = rule_scores(rows)
    out.loc[idx, ["method", "arm", "model_version"]] = ["rule-based", None, None]
    out.loc[idx, "score"] = parts.sum(axis=1).to_numpy()
    _attach_reasons(out, idx, rows, parts, reasons)


def load_models(factory: sessionmaker[Session], challenger_share: float) -> Models:
    """The live champion and challenger bundles; a bundle that cannot load is reported, not fatal."""
    models = Models(champion=None, challenger_share=challenger_share)
    with reading(factory) as session:
        live = {role: getattr(registry, role)(session=session) for role in ("champion", "challenger")}
    for role, version in live.items():
        if version is None:
            continue
        try:
            setattr(models, role, ModelBundle.load(version.id, Path(version.artifact_path)))
        except Exception as exc:  # noqa: BLE001 - a missing or corrupt artifact degrades to rules
            models.load_errors.append(f"{role} {version.id}: {type(exc).__name__}: {exc}")
    return models


DECISION_COLUMNS = ["customer_id", "status", "method", "arm", "model_version", "score", "confidence", "channel",
                    "slot_at", "slot_local", "product", "reasons", "suppressed_by", "requires_confirmation",
                    "objective", "objectives_version", "impact"]


def _records(frame: pd.DataFrame, run_id: str, now: datetime, policy_version: str) -> list[dict[str, Any]]:
    columns = [c for c in DECISION_COLUMNS if c != "slot_at"]
    records = frame[columns].astype(object).where(frame[columns].notna(), None).to_dict("records")
    # Slots are UTC throughout; pandas may drop the zone on assignment and writes NaT for none.
    slots = [None if pd.isna(s) else s.to_pydatetime() for s in pd.to_datetime(frame["slot_at"], utc=True)]
    for record, slot in zip(records, slots):
        record.update(slot_at=slot, run_id=run_id, as_of=now, policy_version=policy_version)
    return records


def _parquet_table(frame: pd.DataFrame, run_id: str, policy_version: str) -> pa.Table:
    flat = frame[DECISION_COLUMNS].copy()
    flat["reasons"] = flat["reasons"].map(lambda r: " | ".join(x["text"] for x in r))
    flat["reason_details"] = frame["reasons"].map(json.dumps)
    flat["suppressed_by"] = flat["suppressed_by"].map(lambda r: ",".join(r))
    flat["impact"] = frame["impact"].map(lambda i: json.dumps(i) if i else None)
    flat["run_id"], flat["policy_version"] = run_id, policy_version
    for column in ("status", "method", "arm", "model_version", "channel", "slot_local", "product", "objective",
                   "objectives_version", "impact"):
        flat[column] = flat[column].astype("string")
    return pa.Table.from_pandas(flat, preserve_index=False)


@dataclass
class ScoreSummary:
    run_id: str
    stats: dict[str, int]
    parquet_path: str | None
    champion: str | None
    challenger: str | None
    load_errors: list[str]
    engine: str = "in-process"


@dataclass(frozen=True)
class ChunkTask:
    """One chunk of the customer base and everything deciding it needs besides its history (picklable: the
    Ray engine ships it to another process, or machine)."""

    index: int
    customer_ids: list[str]
    now: datetime
    policy: ContactPolicy
    reasons: ReasonTable
    explain_top: float
    objectives: tuple[Objectives, str] | None
    budget: int | None


@dataclass
class ChunkResult:
    frame: pd.DataFrame
    stats: Counter
    drift_counts: dict[str, np.ndarray]


def decide_chunk(task: ChunkTask, history: History, rejections: pd.DataFrame, models: Models) -> ChunkResult:
    """Decide one chunk: the same call whichever engine runs it, so engines cannot disagree."""
    counts: dict[str, np.ndarray] = {}
    frame, stats = decide(history, now=task.now, policy=task.policy, models=models, reasons=task.reasons,
                          explain_top=task.explain_top, rejections=rejections, objectives=task.objectives,
                          budget=task.budget, drift_counts=counts)
    return ChunkResult(frame, stats, counts)


class ScoringEngine:
    """Runs chunk tasks and hands their results back in task order. The in-process engine reads each chunk's
    history from the store and decides it here; `app.models.distributed.RayEngine` does it on a Ray cluster."""

    name = "in-process"

    def run(self, factory: sessionmaker[Session], tasks: list[ChunkTask], models: Models) -> Generator[ChunkResult, None, None]:
        for task in tasks:
            yield decide_chunk(task, load_history(factory, task.customer_ids),
                               chunk_rejections(factory, task.customer_ids), models)


def _abandon(factory: sessionmaker[Session], run_id: str, parquet_path: Path | None) -> None:
    """A run that stopped part-way leaves nothing that looks like its result: the chunks it wrote are removed,
    the run stays recorded, unfinished and marked failed (readers take finished runs only), and a partial
    Parquet export is deleted."""
    with unit_of_work(factory) as session:
        session.execute(delete(Decision).where(Decision.run_id == run_id))
        run = session.get(ScoreRun, run_id)
        if run is not None:
            run.stats = {"failed": True}
    if parquet_path is not None:
        parquet_path.unlink(missing_ok=True)


def score_all(factory: sessionmaker[Session], *, now: datetime, policy: ContactPolicy, reasons: ReasonTable,
              challenger_share: float, chunk_size: int = 20_000, parquet_path: Path | None = None,
              explain_top: float = 1.0, progress: Callable[[int], None] | None = None,
              objectives: tuple[Objectives, str] | None = None, engine: ScoringEngine | None = None) -> ScoreSummary:
    """Score every customer in chunks; each chunk's decisions are written in one transaction, in chunk order,
    whichever `engine` decides them (the same chunks and the same inputs give the same decisions).

    A contact budget (`max_contacts` in the objectives) is split over the chunks in proportion to their size,
    so each chunk is written once and final (exact when the base fits one chunk)."""
    engine = engine or ScoringEngine()
    models = load_models(factory, challenger_share)
    run_id = f"run-{now:%Y%m%d-%H%M%S}-{uuid.uuid4().hex[:6]}"
    with unit_of_work(factory) as session:
        session.add(ScoreRun(id=run_id, kind="batch", started_at=now, as_of=now, policy_version=policy.version,
                             champion_version=models.champion.version if models.champion else None,
                             challenger_version=models.challenger.version if models.challenger else None,
                             stats={}, parquet_path=str(parquet_path) if parquet_path else None))
    with factory() as session:
        all_ids = list(session.scalars(select(Customer.id).order_by(Customer.id)))
    tasks = []
    for index, start in enumerate(range(0, len(all_ids), chunk_size)):
        chunk_ids = all_ids[start:start + chunk_size]
        budget = None
        if objectives is not None and objectives[0].max_contacts is not None:
            budget = int(objectives[0].max_contacts * len(chunk_ids) / len(all_ids))
        tasks.append(ChunkTask(index, chunk_ids, now, policy, reasons, explain_top, objectives, budget))
    stats: Counter = Counter()
    drift_counts: dict[str, np.ndarray] = {}
    writer: pq.ParquetWriter | None = None
    results = engine.run(factory, tasks, models)
    finished = False
    try:
        for task, result in zip(tasks, results):
            stats.update(result.stats)
            for name, counts in result.drift_counts.items():
                drift_counts[name] = drift_counts.get(name, 0) + counts
            with unit_of_work(factory) as session:
                session.execute(Decision.__table__.insert(), _records(result.frame, run_id, now, policy.version))
            if parquet_path is not None:
                table = _parquet_table(result.frame, run_id, policy.version)
                if writer is None:
                    parquet_path.parent.mkdir(parents=True, exist_ok=True)
                    writer = pq.ParquetWriter(parquet_path, table.schema)
                writer.write_table(table.cast(writer.schema))
            if progress:
                progress(len(task.customer_ids))
        finished = True
    finally:
        results.close()  # an engine lets go of what it started (a local Ray cluster) at once, even on an error
        if writer is not None:
            writer.close()
        if not finished:
            try:
                _abandon(factory, run_id, parquet_path if writer is not None else None)
            except Exception:  # the store may be what failed: the original error is the one to see
                log.exception("could not clear the unfinished run %s", run_id)
    with unit_of_work(factory) as session:
        run = session.get(ScoreRun, run_id)
        run.finished_at = utcnow()
        run.stats = {**dict(stats), "engine": engine.name}
        if drift_counts and models.champion is not None and models.champion.reference:
            # What moved since training, most first: the cockpit and the report read it from the run.
            moved = {name: drift.psi(models.champion.reference[name]["shares"], counts)
                     for name, counts in drift_counts.items()}
            run.stats["feature_psi"] = dict(sorted(moved.items(), key=lambda kv: -kv[1]))
    return ScoreSummary(run_id, dict(stats), str(parquet_path) if parquet_path else None,
                        models.champion.version if models.champion else None,
                        models.challenger.version if models.challenger else None, models.load_errors, engine.name)


def top_decisions(*, session: Session, run_id: str, limit: int = 20) -> list[Decision]:
    return list(session.scalars(select(Decision).where(Decision.run_id == run_id, Decision.status == "recommended")
                                .order_by(Decision.score.desc()).limit(limit)))


def latest_batch_run(*, session: Session) -> ScoreRun | None:
    """The newest finished run over the whole customer base (not the day's trigger decisions)."""
    return session.scalars(select(ScoreRun).where(ScoreRun.finished_at.is_not(None), ScoreRun.kind == "batch")
                           .order_by(ScoreRun.started_at.desc())).first()


def latest_decision(*, session: Session, customer_id: str | None = None) -> Decision:
    """The newest full run's decision for a customer, or its top-ranked recommendation.

    Raises NotFound with the reason when there is nothing to draft for.
    """
    run = latest_batch_run(session=session)
    if run is None:
        raise NotFound("no finished scoring run: run `outreach score` (or `outreach demo`) first", field="customer")
    statement = select(Decision).where(Decision.run_id == run.id)
    if customer_id is None:
        found = session.scalars(statement.where(Decision.status == "recommended")
                                .order_by(Decision.score.desc())).first()
        if found is None:
            raise NotFound(f"run {run.id} recommended nobody", field="customer")
        return found
    found = session.scalars(statement.where(Decision.customer_id == customer_id)).first()
    if found is None:
        raise NotFound(f"customer {customer_id!r} has no decision in run {run.id}", field="customer")
    if found.status != "recommended":
        why = ", ".join(str(s.get("rule", s)) if isinstance(s, dict) else str(s) for s in found.suppressed_by)
        raise NotFound(f"customer {customer_id!r} is not recommended in run {run.id} "
                       f"({found.status}{': ' + why if why else ''})", field="customer")
    return found


def chunk_rejections(factory: sessionmaker[Session], customer_ids: list[str]) -> pd.DataFrame:
    """What reps rejected for these customers lately (the policy holds them back for a while)."""
    with reading(factory) as session:
        return feedback.rep_rejections(session=session, customer_ids=customer_ids)


@dataclass
class FreshDecision:
    """One customer's decision made outside a batch run (a trigger fired), not stored yet."""

    record: dict[str, Any]
    policy_version: str
    champion: str | None
    challenger: str | None


def decide_fresh(factory: sessionmaker[Session], customer_id: str, *, now: datetime, policy: ContactPolicy,
                 reasons: ReasonTable, challenger_share: float,
                 objectives: tuple[Objectives, str] | None = None) -> FreshDecision:
    """A fresh decision for one customer (the slow part: history, features, models); reads only."""
    models = load_models(factory, challenger_share)
    history = load_history(factory, [customer_id])
    if history.customers.empty:
        raise NotFound(f"customer {customer_id!r} not found", field="customer_id")
    frame, _ = decide(history, now=now, policy=policy, models=models, reasons=reasons,
                      rejections=chunk_rejections(factory, [customer_id]), objectives=objectives)
    run_id = f"live-{now:%Y%m%d}"
    return FreshDecision(record=_records(frame, run_id, now, policy.version)[0], policy_version=policy.version,
                         champion=models.champion.version if models.champion else None,
                         challenger=models.challenger.version if models.challenger else None)


def store_fresh(*, session: Session, fresh: FreshDecision, now: datetime) -> Decision:
    """Store a fresh decision in the day's live run, inside the caller's unit of work."""
    run_id = fresh.record["run_id"]
    if session.get(ScoreRun, run_id) is None:
        session.add(ScoreRun(id=run_id, kind="live", started_at=now, finished_at=now, as_of=now,
                             policy_version=fresh.policy_version, champion_version=fresh.champion,
                             challenger_version=fresh.challenger, stats={"source": "triggers"}))
        session.flush()
    decision = Decision(**fresh.record)
    session.add(decision)
    session.flush()
    return decision
