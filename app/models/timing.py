"""The timing and channel model: expected response by channel x local hour-of-week for a kind of customer.

A penalised logistic GAM over the customer's groups (those of segment, industry and lifecycle stage that earn their
place by cross-validation) and the contact plan: per group a channel effect, and smooth periodic curves over the
local hour of the week and the hour of the day (cubic B-splines that wrap around, so Sunday 23:00 sits next to
Monday 00:00). Why not trees: a response peak a few hours wide is a smooth bump, and a spline learns it from the
hours beside it, where a tree needs enough positives in every cell of group x hour; on the synthetic history the
GAM recovers the planted best channel and slot more often and ranks held-out attempts better
(`eval/timing_recovery.py`). The penalty is chosen by cross-validation on the training rows, and so is its kind:
plain ridge on the spline coefficients, which pulls a curve towards zero where no attempt was made (at the edge of
quiet hours, so a peak at 19:00 next to no data after 21:00 drifts earlier), or mostly a roughness penalty (on
second differences of neighbouring coefficients, as in P-splines) with a little ridge, which lets the curve stay
high up to the edge of the data.

Every row with the same groups, channel and hour shares one design row, so fitting, cross-validating and scoring
work on the distinct cells (at most groups x channels x 168), weighted by their counts: the same likelihood and the
same model at any number of rows. Scoring evaluates the full grid once per distinct group, not per customer, so
choosing a slot for a million customers costs a table look-up each. Being additive, the model's log-odds split
exactly into a part per feature (`contributions`), which the propensity model uses for its reasons.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import SplineTransformer

from app.domain import Channel
from app.features.build import PROFILE_CATEGORIES

CHANNELS = [c.value for c in Channel]
HOURS_OF_WEEK = 168
PLAN_FEATURES = ["channel", "hour_of_week"]
WEEK_KNOTS, DAY_KNOTS = 57, 13  # a knot every 3 hours of the week, every 2 hours of the day
PENALTIES = (0.01, 0.03, 0.1, 0.3)  # inverse L2 strengths tried by cross-validation
# The penalty's kind, tried by cross-validation: None is plain ridge on the spline coefficients; a number r is
# roughness (squared second differences around the circle) plus r times ridge. On the synthetic history (20k
# customers, `eval/timing_recovery.py`) CV picks r = 1 on seeds 0, 1, 2 and 11: propensity held-out AUC 0.6948 vs
# 0.6942 with ridge only (seed 0), 0.6906 vs 0.6875 (seed 11); planted best slots 6/6 vs 6/6 and 5/6 vs 4/6 (but
# seed 2: 5/6 vs 6/6). Pure roughness (r -> 0) runs peaks to the edge of the observed hours (08:00, 20:00).
SMOOTHINGS: tuple[float | None, ...] = (None, 1.0)


def _periodic(knots: int, period: float) -> SplineTransformer:
    # Fitted on the period's ends only, so the basis is a pure function of (knots, period): rebuilt, not stored.
    return SplineTransformer(n_knots=knots, degree=3, extrapolation="periodic").fit(np.array([[0.0], [period]]))


@lru_cache(maxsize=8)
def _roughness_basis(width: int, ridge: float) -> np.ndarray:
    """M such that plain L2 on theta, with spline coefficients beta = M @ theta, is the penalty
    beta' (D'D + ridge I) beta, D the circular second differences: a ridge solver fits a P-spline."""
    step = np.eye(width) - np.roll(np.eye(width), 1, axis=1)
    second = step @ step
    eigenvalues, vectors = np.linalg.eigh(second.T @ second)
    return vectors / np.sqrt(eigenvalues + ridge)


def _curve(knots: int, period: float, values: np.ndarray, smoothing: float | None) -> sp.csr_matrix:
    basis = _periodic(knots, period).transform(values)
    if smoothing is not None:
        basis = basis @ _roughness_basis(basis.shape[1], smoothing)
    return sp.csr_matrix(basis)


def _codes(values: pd.Series, levels: list[str]) -> np.ndarray:
    """Each value's index among the training levels; -1 for a missing or unseen value (the average customer)."""
    return np.asarray(pd.Categorical(values.astype("string").astype(object), categories=levels).codes, dtype=np.int64)


def _one_hot(code: np.ndarray, levels: int) -> sp.csr_matrix:
    rows = np.flatnonzero(code >= 0)
    return sp.csr_matrix((np.ones(len(rows)), (rows, code[rows])), shape=(len(code), levels))


def _cross(code: np.ndarray, levels: int, basis: sp.csr_matrix) -> sp.csr_matrix:
    """Each row's basis values placed in its level's block: a separate curve (or effect) per level."""
    entries = basis.tocoo()
    keep = code[entries.row] >= 0
    rows, cols, values = entries.row[keep], entries.col[keep], entries.data[keep]
    width = basis.shape[1]
    return sp.csr_matrix((values, (rows, code[rows] * width + cols)), shape=(basis.shape[0], levels * width))


@dataclass
class TimingModel:
    groups: list[str]
    categories: dict[str, list[str]]
    coef: np.ndarray
    intercept: float
    penalty: float
    smoothing: float | None = None  # the penalty's kind (see SMOOTHINGS)

    @property
    def features(self) -> list[str]:
        return self.groups + PLAN_FEATURES

    def _blocks(self, frame: pd.DataFrame) -> list[tuple[str, sp.csr_matrix]]:
        """The design matrix in blocks, each named by the feature its part of the log-odds is credited to."""
        how = pd.to_numeric(frame["hour_of_week"], errors="coerce").to_numpy(np.float64).reshape(-1, 1)
        unknown = np.isnan(how).ravel()
        how = np.nan_to_num(how)
        week = _curve(WEEK_KNOTS, HOURS_OF_WEEK, how, self.smoothing)
        day = _curve(DAY_KNOTS, 24, how % 24, self.smoothing)
        if unknown.any():  # no time given: no time effect
            keep = sp.diags((~unknown).astype(np.float64))
            week, day = keep @ week, keep @ day
        n_channels = len(self.categories["channel"])
        channel_code = _codes(frame["channel"], self.categories["channel"])
        channel = _one_hot(channel_code, n_channels)
        blocks = [("channel", channel), ("hour_of_week", week), ("hour_of_week", day),
                  ("hour_of_week", _cross(channel_code, n_channels, day))]
        for group in self.groups:
            levels = len(self.categories[group])
            code = _codes(frame[group], self.categories[group])
            blocks += [(group, _one_hot(code, levels)), ("channel", _cross(code, levels, channel)),
                       ("hour_of_week", _cross(code, levels, week)), ("hour_of_week", _cross(code, levels, day))]
        return blocks

    def design(self, frame: pd.DataFrame) -> sp.csr_matrix:
        return sp.hstack([block for _, block in self._blocks(frame)]).tocsr()

    def logit(self, frame: pd.DataFrame) -> np.ndarray:
        cells, cell_of_row = _distinct(frame, self.features)
        return (self.design(cells) @ self.coef + self.intercept)[cell_of_row]

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected response (probability) for feature rows."""
        return 1 / (1 + np.exp(-self.logit(frame)))

    def contributions(self, frame: pd.DataFrame) -> pd.DataFrame:
        """The log-odds split by feature (groups, channel, hour_of_week), exact: they sum to `logit - intercept`."""
        out = pd.DataFrame(0.0, index=frame.index, columns=self.features)
        start = 0
        for name, block in self._blocks(frame):
            out[name] += block @ self.coef[start:start + block.shape[1]]
            start += block.shape[1]
        return out

    def grid(self, groups: pd.DataFrame) -> np.ndarray:
        """Expected response for each group row x channel x hour-of-week."""
        n = len(groups)
        rows = groups[self.groups].loc[groups.index.repeat(len(CHANNELS) * HOURS_OF_WEEK)].reset_index(drop=True)
        rows["channel"] = np.tile(np.repeat(CHANNELS, HOURS_OF_WEEK), n)
        rows["hour_of_week"] = np.tile(np.arange(HOURS_OF_WEEK), n * len(CHANNELS))
        return self.predict(rows).reshape(n, len(CHANNELS), HOURS_OF_WEEK)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "timing.json").write_text(json.dumps(
            {"kind": "periodic-spline-gam", "groups": self.groups, "categories": self.categories,
             "week_knots": WEEK_KNOTS, "day_knots": DAY_KNOTS, "penalty": self.penalty, "smoothing": self.smoothing,
             "intercept": self.intercept, "coef": self.coef.tolist()}))

    @classmethod
    def load(cls, folder: Path) -> TimingModel:
        meta = json.loads((folder / "timing.json").read_text())
        if meta.get("kind") != "periodic-spline-gam" or (meta["week_knots"], meta["day_knots"]) != (WEEK_KNOTS, DAY_KNOTS):
            raise ValueError(f"{folder / 'timing.json'}: a timing model of an older kind; retrain (`outreach train`)")
        return cls(meta["groups"], meta["categories"], np.array(meta["coef"]), float(meta["intercept"]),
                   float(meta["penalty"]), meta.get("smoothing"))


def _distinct(frame: pd.DataFrame, columns: list[str]) -> tuple[pd.DataFrame, np.ndarray]:
    """The distinct rows of `columns` (missing values included) and, for each row, the index of its own."""
    keys = frame[columns].astype(object)
    cell_of_row = keys.groupby(columns, dropna=False, sort=False).ngroup().to_numpy()
    _, first = np.unique(cell_of_row, return_index=True)
    return keys.iloc[first].reset_index(drop=True), cell_of_row


@dataclass
class Cells:
    """Training rows folded into distinct (groups, channel, hour) cells: each cell twice, once with its positives'
    count as weight and label 1, once with its negatives'. The weighted log-likelihood is the rows' own."""

    frame: pd.DataFrame
    label: np.ndarray
    weight: np.ndarray

    @classmethod
    def of(cls, features: pd.DataFrame, y: np.ndarray, columns: list[str]) -> Cells:
        cells, cell_of_row = _distinct(features, columns)
        positives = np.bincount(cell_of_row, weights=y, minlength=len(cells))
        negatives = np.bincount(cell_of_row, minlength=len(cells)) - positives
        label = np.repeat([1, 0], len(cells))
        weight = np.concatenate([positives, negatives])
        keep = weight > 0
        return cls(pd.concat([cells, cells], ignore_index=True)[keep].reset_index(drop=True), label[keep], weight[keep])


def _logistic(x: sp.csr_matrix, cells: Cells, penalty: float) -> LogisticRegression:
    return LogisticRegression(C=penalty, max_iter=3000).fit(x, cells.label, sample_weight=cells.weight)


def _unfitted(features: pd.DataFrame, groups: list[str], smoothing: float | None = None) -> TimingModel:
    """The model's schema from training rows: the given customer groups and every category's levels."""
    categories = {name: sorted(features[name].dropna().astype(str).unique().tolist()) for name in groups + ["channel"]}
    return TimingModel(list(groups), categories, np.zeros(0), 0.0, 0.0, smoothing)


def _fitted(model: TimingModel, features: pd.DataFrame, y: np.ndarray, penalty: float) -> TimingModel:
    cells = Cells.of(features, y, model.features)
    fitted = _logistic(model.design(cells.frame), cells, penalty)
    model.coef, model.intercept, model.penalty = fitted.coef_.ravel(), float(fitted.intercept_[0]), penalty
    return model


def train_timing(features: pd.DataFrame, target: pd.Series, *, seed: int = 0) -> TimingModel:
    """Which customer groups get their own channel effects and curves, the penalty and its kind are chosen by
    4-fold cross-validated AUC on the training rows only: groups are added one at a time while
    they help. A group whose curves do not predict better on held-out folds only adds variance: on the synthetic
    history (20k customers, seed 0), curves for industry and lifecycle stage, which the planted truth does not use,
    cost the propensity model built on this one 0.003 held-out AUC (0.6914 against 0.6942)."""
    y = target.astype(int).to_numpy()
    folds = list(StratifiedKFold(4, shuffle=True, random_state=seed).split(features, y))

    cv_scores: dict[tuple[tuple[str, ...], float | None], dict[float, float]] = {}  # each (groups, kind) once

    def scored(groups: list[str], smoothings: tuple[float | None, ...]) -> tuple[float, tuple[float, float | None]]:
        split = None
        for smoothing in smoothings:
            if (tuple(groups), smoothing) in cv_scores:
                continue
            if split is None:
                columns = groups + PLAN_FEATURES
                split = [(Cells.of(features.iloc[a], y[a], columns), Cells.of(features.iloc[b], y[b], columns))
                         for a, b in folds]
            model = _unfitted(features, groups, smoothing)
            designs = [(fit, model.design(fit.frame), held, model.design(held.frame)) for fit, held in split]
            cv_scores[tuple(groups), smoothing] = {c: np.mean([
                roc_auc_score(held.label, _logistic(x_fit, fit, c).decision_function(x_held), sample_weight=held.weight)
                for fit, x_fit, held, x_held in designs]) for c in PENALTIES}
        scores = {(c, smoothing): score for smoothing in smoothings
                  for c, score in cv_scores[tuple(groups), smoothing].items()}
        choice = max(scores, key=scores.get)
        return scores[choice], choice

    # The groups under plain ridge (its design is sparse, so each of the many fits is cheaper), then the penalty's
    # kind and strength for the groups chosen.
    candidates = [g for g in PROFILE_CATEGORIES if g in features and features[g].notna().any()]
    chosen: list[str] = []
    best, _ = scored(chosen, SMOOTHINGS[:1])
    while candidates:
        tried = {group: scored(chosen + [group], SMOOTHINGS[:1]) for group in candidates}
        group = max(tried, key=lambda g: tried[g][0])
        if tried[group][0] <= best:
            break
        chosen.append(group)
        candidates.remove(group)
        best = tried[group][0]
    _, (penalty, smoothing) = scored(chosen, SMOOTHINGS)
    return _fitted(_unfitted(features, chosen, smoothing), features, y, penalty)


def cross_fitted_logit(features: pd.DataFrame, target: pd.Series, timing: TimingModel, *, seed: int = 0,
                       folds: int = 5) -> np.ndarray:
    """Each training row's timing log-odds from a model fitted without it: an honest offset for a model
    trained on top of the timing model."""
    out = np.zeros(len(features))
    y = target.astype(int).to_numpy()
    for fit_rows, held in StratifiedKFold(folds, shuffle=True, random_state=seed).split(features, y):
        part = features.iloc[fit_rows]
        model = _fitted(_unfitted(part, timing.groups, timing.smoothing), part, y[fit_rows], timing.penalty)
        out[held] = model.logit(features.iloc[held])
    return out


def best_plans(grid: np.ndarray, allowed_channels: np.ndarray, allowed_hours: np.ndarray
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each row's (channels x hours) grid, the best allowed channel index, hour-of-week and score.
    Rows with nothing allowed get channel -1."""
    masked = np.where(allowed_channels[:, :, None] & allowed_hours[None, None, :], grid, -np.inf)
    flat = masked.reshape(len(grid), -1).argmax(axis=1)
    channel, how = np.divmod(flat, HOURS_OF_WEEK)
    score = masked.reshape(len(grid), -1)[np.arange(len(grid)), flat]
    channel = np.where(np.isfinite(score), channel, -1)
    return channel, how, score


def next_occurrence(hour_of_week: np.ndarray, earliest_s: np.ndarray, zones: np.ndarray) -> pd.Series:
    """The first local time at or after `earliest` that falls on the given hour-of-week, as UTC."""
    out = pd.Series(pd.NaT, index=range(len(hour_of_week)), dtype="datetime64[ns, UTC]")
    earliest = pd.to_datetime(earliest_s, unit="s", utc=True)
    for zone in pd.unique(zones):
        mask = zones == zone
        # On wall-clock time: rounding an aware time fails when the next hour is the one a DST change repeats
        # (scoring at 09:00 UTC on 1 November 2026 hit 01:00, which Los Angeles had twice that night).
        start_hour = earliest[mask].tz_convert(zone).tz_localize(None).ceil("h")
        current = np.asarray(start_hour.day_of_week * 24 + start_hour.hour)
        delta = (hour_of_week[mask] - current) % HOURS_OF_WEEK
        naive = start_hour + pd.to_timedelta(delta, unit="h")
        # A repeated hour: its second (standard-time) occurrence, never before `earliest`; a skipped one: the
        # first hour after the change.
        out[mask] = naive.tz_localize(zone, ambiguous=np.zeros(len(naive), dtype=bool),
                                      nonexistent="shift_forward").tz_convert("UTC")
    return out


def describe_slot(at: datetime | pd.Timestamp, zone: str) -> str:
    local = pd.Timestamp(at).tz_convert(zone)
    return f"{local:%a %d %b %H:%M} {zone}"
