"""The timing and channel model: expected response by channel x local hour-of-week for a kind of customer.

It is a small LightGBM over the customer's group (segment, industry, lifecycle stage) and the
contact plan (channel, hour-of-week). Scoring evaluates the full grid once per distinct group,
not per customer, so choosing a slot for a million customers costs a table look-up each.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from app.domain import Channel
from app.features.build import PROFILE_CATEGORIES
from app.models.propensity import as_category

CHANNELS = [c.value for c in Channel]
HOURS_OF_WEEK = 168
PLAN_FEATURES = ["channel", "hour_of_week", "hour", "day_of_week"]
TIMING_PARAMS = {"objective": "binary", "learning_rate": 0.05, "num_leaves": 15, "min_child_samples": 50,
                 "lambda_l2": 5.0, "verbose": -1, "num_threads": 2, "cat_smooth": 20}


@dataclass
class TimingModel:
    booster: lgb.Booster
    groups: list[str]
    categories: dict[str, list[str]]

    @property
    def features(self) -> list[str]:
        return self.groups + PLAN_FEATURES

    def _prepare(self, frame: pd.DataFrame) -> pd.DataFrame:
        out = frame[self.features].copy()
        for name, levels in self.categories.items():
            out[name] = as_category(out[name], levels)
        for name in ("hour_of_week", "hour", "day_of_week"):
            out[name] = out[name].astype(np.float64)
        return out

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        """Expected response (uncalibrated probability) for feature rows."""
        return self.booster.predict(self._prepare(frame))

    def grid(self, groups: pd.DataFrame) -> np.ndarray:
        """Expected response (uncalibrated probability) for each group row x channel x hour-of-week."""
        n = len(groups)
        how = np.arange(HOURS_OF_WEEK)
        rows = groups[self.groups].loc[groups.index.repeat(len(CHANNELS) * HOURS_OF_WEEK)].reset_index(drop=True)
        rows["channel"] = np.tile(np.repeat(CHANNELS, HOURS_OF_WEEK), n)
        rows["hour_of_week"] = np.tile(how, n * len(CHANNELS))
        rows["hour"] = rows["hour_of_week"] % 24
        rows["day_of_week"] = rows["hour_of_week"] // 24
        scores = self.predict(rows)
        return scores.reshape(n, len(CHANNELS), HOURS_OF_WEEK)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        self.booster.save_model(folder / "timing.txt")
        (folder / "timing.json").write_text(json.dumps({"groups": self.groups, "categories": self.categories}))

    @classmethod
    def load(cls, folder: Path) -> TimingModel:
        meta = json.loads((folder / "timing.json").read_text())
        return cls(lgb.Booster(model_file=str(folder / "timing.txt")), meta["groups"], meta["categories"])


def train_timing(features: pd.DataFrame, target: pd.Series, *, seed: int = 0) -> TimingModel:
    groups = [g for g in PROFILE_CATEGORIES if g in features and features[g].notna().any()]
    categories = {name: sorted(features[name].dropna().astype(str).unique().tolist()) for name in groups + ["channel"]}
    model = TimingModel(None, groups, categories)  # type: ignore[arg-type]  # booster set below
    data = lgb.Dataset(model._prepare(features), target.astype(int), categorical_feature=groups + ["channel"])
    model.booster = lgb.train({**TIMING_PARAMS, "seed": seed}, data, num_boost_round=300)
    return model


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
        local = earliest[mask].tz_convert(zone)
        start_hour = local.ceil("h")
        current = np.asarray(start_hour.day_of_week * 24 + start_hour.hour)
        delta = (hour_of_week[mask] - current) % HOURS_OF_WEEK
        naive = start_hour.tz_localize(None) + pd.to_timedelta(delta, unit="h")
        out[mask] = naive.tz_localize(zone, ambiguous="NaT", nonexistent="shift_forward").tz_convert("UTC")
    return out


def describe_slot(at: datetime | pd.Timestamp, zone: str) -> str:
    local = pd.Timestamp(at).tz_convert(zone)
    return f"{local:%a %d %b %H:%M} {zone}"
