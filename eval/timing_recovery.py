"""How well do the timing and channel models recover the planted best slot and channel?

Generates a seeded synthetic history, trains exactly as `outreach train` does, then for each
segment compares the model's best (channel, local hour-of-week) with the planted truth and
computes the regret: planted-best response rate minus the true rate of the chosen plan
(neutral customer state, quiet hours applied to both). Also scores every customer with the
contact policy and reports the same for the individual decisions, and the propensity model's held-out ROC AUC
beside what the planted probabilities themselves reach on the same slice, the same without each customer's
unobservable noise term, and a well-specified model: a logistic regression told the planted functional form
(which features matter, the shape and centre of every bump and decay) and fitted on the same training rows.
No model that must learn those shapes from the rows can expect to beat it: the gap between it and the planted
probabilities is the part of the gap no model closes at this data size.
The gap comes with a 95 % paired bootstrap interval over the held-out attempts: at 20,000 customers the slice
holds about 6,000 attempts, and the interval is about three hundredths wide.

    .venv/bin/python eval/timing_recovery.py --customers 50000
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from app.data.synthetic import (CHANNELS as PLANTED_CHANNELS, DAYS, EFFECTS, SEGMENT_KEYS, SEGMENTS, generate,
                                load_into_store, slot_effect, true_response_rate)
from app.features.build import POSITIVE, load_history, training_frame
from app.models.reasons import load_reason_table
from app.models.scoring import decide, load_models
from app.models.timing import CHANNELS, best_plans
from app.models.training import time_split, train_and_register
from app.policy.rules import load_policy
from app.config import Settings
from app.services import Services

NOW = datetime(2026, 11, 1, tzinfo=timezone.utc)


def slot_name(how: int) -> str:
    return f"{DAYS[how // 24]} {how % 24:02d}:00"


def circular_distance(a: int, b: int) -> int:
    d = abs(a - b) % 168
    return min(d, 168 - d)


def planted_design(features) -> np.ndarray:  # noqa: ANN001
    """The planted model's own terms, computed from the product's feature rows: per segment a level, a channel
    effect and the slot bump; the recency of a view of the offered product, recent pricing, upsell and complaint
    conversations, fatigue and warmth from the last contact. Only the effect sizes are left to fit."""
    segment = features["segment"].map({s: i for i, s in enumerate(SEGMENT_KEYS)}).to_numpy()
    channel = features["channel"].map({c: i for i, c in enumerate(PLANTED_CHANNELS)}).to_numpy()
    one_hot = np.eye(len(SEGMENT_KEYS))[segment]
    by_channel = (one_hot[:, :, None] * np.eye(len(PLANTED_CHANNELS))[channel][:, None, :]).reshape(len(features), -1)
    slot = one_hot * slot_effect(segment, features["hour_of_week"].to_numpy())[:, None]
    viewed = features["days_since_product_view"].to_numpy()
    contact = features["days_since_last_contact"].to_numpy()
    fatigued = ~np.isnan(contact) & (contact < EFFECTS["fatigue_days"])
    warm = ~np.isnan(contact) & ~fatigued
    state = np.column_stack([
        np.where(np.isnan(viewed), 0.0, np.exp(-np.nan_to_num(viewed) / EFFECTS["view_decay_days"])),
        features["pricing_question_14d"] > 0, features["upsell_interest_14d"] > 0, features["complaint_14d"] > 0,
        fatigued, np.where(warm, np.exp(-np.nan_to_num(contact) / EFFECTS["warmth_decay_days"]), 0.0)])
    return np.hstack([one_hot, by_channel, slot, state.astype(np.float64)])


def gap_interval(y: np.ndarray, planted: np.ndarray, model: np.ndarray, rounds: int = 1000, seed: int = 0
                 ) -> tuple[float, float]:
    """95 % paired bootstrap interval of (planted AUC - model AUC) over the held-out attempts: how far one slice of
    a few thousand attempts pins the gap down, so a figure a few thousandths either side of a target is read as the
    noise it is."""
    rng = np.random.default_rng(seed)
    gaps = []
    for _ in range(rounds):
        rows = rng.integers(0, len(y), len(y))
        if y[rows].min() == y[rows].max():
            continue
        gaps.append(roc_auc_score(y[rows], planted[rows]) - roc_auc_score(y[rows], model[rows]))
    low, high = np.percentile(gaps, [2.5, 97.5])
    return round(float(low), 4), round(float(high), 4)


def planted_auc(history, synthetic, model=None) -> dict:  # noqa: ANN001
    """What the planted probabilities themselves reach on the model's held-out slice (the same time split as
    `outreach train`), the same without each customer's unobservable noise term, and the well-specified model
    fitted on the training slice; with the propensity `model`, the bootstrap interval of its gap to the planted."""
    features, target, times = training_frame(history)
    train, test = time_split(times, 0.2)
    design = planted_design(features)
    well_specified = LogisticRegression(C=1.0, max_iter=5000).fit(design[train], target[train].astype(int))
    truth = (history.attempts[["id", "customer_id"]].reset_index(drop=True)
             .merge(synthetic.attempt_truth, left_on="id", right_on="attempt_id", how="left")
             .merge(synthetic.customer_truth, on="customer_id", how="left"))
    p = truth["true_probability"].to_numpy()
    y = history.attempts["outcome"].reset_index(drop=True).isin(POSITIVE).to_numpy()
    logit = np.log(p) - np.log1p(-p)
    interval = {} if model is None else {"propensity_gap_to_planted_ci95": gap_interval(
        y[test].astype(int), p[test], model.predict(features[test]))}
    return {**interval, "planted_roc_auc": round(float(roc_auc_score(y[test], p[test])), 4),
            "planted_without_customer_noise_roc_auc":
                round(float(roc_auc_score(y[test], (logit - truth["propensity_noise"].to_numpy())[test])), 4),
            "well_specified_roc_auc": round(float(roc_auc_score(y[test], well_specified.decision_function(design[test]))), 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--customers", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tolerance-hours", type=int, default=1, help="a slot this close to the planted one counts as recovered")
    args = parser.parse_args()
    policy = load_policy()
    allowed = policy.allowed_hours_of_week()
    with tempfile.TemporaryDirectory() as folder:
        factory = Services(Settings(_env_file=None, data_dir=Path(folder))).store
        started = time.perf_counter()
        synthetic = generate(customers=args.customers, now=NOW, seed=args.seed)
        load_into_store(synthetic, factory)
        result = train_and_register(factory, models_dir=Path(folder) / "models", now=NOW, actor="eval", seed=args.seed)
        models = load_models(factory, 0.0)
        history = load_history(factory)
        timing = models.champion.timing
        planted = planted_auc(history, synthetic, models.champion.propensity)

        report: dict[str, dict] = {}
        customers = history.customers
        for segment, truth in SEGMENTS.items():
            members = customers[customers["segment"] == segment]
            groups = members[timing.groups].value_counts().reset_index(name="n")
            grid = timing.grid(groups[timing.groups])
            weighted = (grid * groups["n"].to_numpy()[:, None, None]).sum(axis=0, keepdims=True) / groups["n"].sum()
            channel, how, _ = best_plans(weighted, np.ones((1, len(CHANNELS)), dtype=bool), allowed)
            planted_how = truth["best_slot"][0] * 24 + truth["best_slot"][1]
            best_rate = true_response_rate(segment, truth["best_channel"], planted_how)
            chosen_rate = true_response_rate(segment, CHANNELS[channel[0]], int(how[0]))
            report[segment] = {
                "planted": f"{truth['best_channel']} {slot_name(planted_how)}",
                "model": f"{CHANNELS[channel[0]]} {slot_name(int(how[0]))}",
                "channel_recovered": CHANNELS[channel[0]] == truth["best_channel"],
                "slot_recovered": circular_distance(int(how[0]), planted_how) <= args.tolerance_hours,
                "regret": round(best_rate - chosen_rate, 4),
                "relative_regret": round((best_rate - chosen_rate) / best_rate, 4),
            }

        # The same for every scored decision: the channel and slot the product would actually suggest.
        frame, _ = decide(history, now=NOW, policy=policy, models=models, reasons=load_reason_table())
        chosen = frame[frame["status"] == "recommended"].merge(customers[["id", "segment", "timezone"]],
                                                               left_on="customer_id", right_on="id")
        local = [s.tz_convert(z) for s, z in zip(chosen["slot_at"], chosen["timezone"])]
        hows = np.array([t.day_of_week * 24 + t.hour for t in local])
        regrets, channel_hits, slot_hits = [], 0, 0
        for segment, ch, how in zip(chosen["segment"], chosen["channel"], hows):
            truth = SEGMENTS[segment]
            planted_how = truth["best_slot"][0] * 24 + truth["best_slot"][1]
            best = true_response_rate(segment, truth["best_channel"], planted_how)
            regrets.append((best - true_response_rate(segment, ch, int(how))) / best)
            channel_hits += ch == truth["best_channel"]
            slot_hits += circular_distance(int(how), planted_how) <= args.tolerance_hours
        summary = {
            "customers": args.customers,
            "propensity_roc_auc": round(result.metrics["roc_auc"], 4),
            **planted,
            "propensity_gap_to_planted": round(planted["planted_roc_auc"] - result.metrics["roc_auc"], 4),
            "well_specified_gap_to_planted": round(planted["planted_roc_auc"] - planted["well_specified_roc_auc"], 4),
            "timing_roc_auc": round(result.metrics["timing_roc_auc"], 4),
            "segments_channel_recovered": sum(r["channel_recovered"] for r in report.values()) / len(report),
            "segments_slot_recovered": sum(r["slot_recovered"] for r in report.values()) / len(report),
            "segments_mean_relative_regret": round(float(np.mean([r["relative_regret"] for r in report.values()])), 4),
            "decisions": len(chosen),
            "decisions_best_channel": round(channel_hits / max(len(chosen), 1), 4),
            "decisions_best_slot": round(slot_hits / max(len(chosen), 1), 4),
            "decisions_mean_relative_regret": round(float(np.mean(regrets)), 4),
            "seconds": round(time.perf_counter() - started, 1),
        }
    print(json.dumps({"segments": report, "summary": summary}, indent=2))


if __name__ == "__main__":
    main()
