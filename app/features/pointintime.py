"""Vectorised "as of" look-ups over (key, time) pairs: the last time before T, counts and sums in [T - w, T).

Times are int64 seconds; keys are non-negative integers (customer codes, or customer x product).
Both are packed into one sorted int64 so one `searchsorted` answers every query at once.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

_TIME_BITS = 34  # 2**34 s is 544 years: room for any epoch-second timestamp after 1970
_TIME_MASK = (1 << _TIME_BITS) - 1


def _pack(keys: np.ndarray, times: np.ndarray) -> np.ndarray:
    keys = np.asarray(keys, dtype=np.int64)
    times = np.asarray(times, dtype=np.int64)
    if keys.size and (keys.min() < 0 or keys.max() >= (1 << (62 - _TIME_BITS))):
        raise ValueError("keys out of range for the packed index")
    return (keys << _TIME_BITS) | np.clip(times, 0, _TIME_MASK)


def epoch_seconds(values: pd.Series | pd.DatetimeIndex) -> np.ndarray:
    """Timestamps (aware, or naive meaning UTC) as int64 epoch seconds, whatever pandas' time unit."""
    stamps = pd.to_datetime(values, utc=True)
    if not len(stamps):
        return np.zeros(0, dtype=np.int64)
    return ((stamps - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(seconds=1)).to_numpy(dtype=np.int64)


class TimeIndex:
    """Sorted (key, time) pairs answering point-in-time queries without a loop per key."""

    def __init__(self, keys: np.ndarray, times: np.ndarray, values: np.ndarray | None = None) -> None:
        packed = _pack(keys, times)
        order = np.argsort(packed, kind="stable")
        self._packed = packed[order]
        # Running totals of `values` in index order, so a sum over any window is two look-ups.
        self._totals = None if values is None else np.concatenate([[0.0], np.cumsum(np.asarray(values, float)[order])])

    def __len__(self) -> int:
        return len(self._packed)

    def last_before(self, keys: np.ndarray, times: np.ndarray) -> np.ndarray:
        """The latest time strictly before each query time with the same key, as float seconds; NaN if none."""
        query = _pack(keys, times)
        position = np.searchsorted(self._packed, query, side="left") - 1
        found = np.full(len(query), np.nan)
        if not len(self._packed):
            return found
        candidate = self._packed[np.clip(position, 0, None)]
        same_key = (position >= 0) & ((candidate >> _TIME_BITS) == np.asarray(keys, dtype=np.int64))
        found[same_key] = (candidate[same_key] & _TIME_MASK).astype(np.float64)
        return found

    def _bounds(self, keys: np.ndarray, start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return (np.searchsorted(self._packed, _pack(keys, start), side="left"),
                np.searchsorted(self._packed, _pack(keys, end), side="left"))

    def count_between(self, keys: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """How many entries with the same key fall in [start, end) for each query."""
        lo, hi = self._bounds(keys, start, end)
        return (hi - lo).astype(np.int64)

    def sum_between(self, keys: np.ndarray, start: np.ndarray, end: np.ndarray) -> np.ndarray:
        """The sum of the `values` given at construction over entries with the same key in [start, end)."""
        if self._totals is None:
            raise ValueError("this index was built without values to sum")
        lo, hi = self._bounds(keys, start, end)
        return self._totals[hi] - self._totals[lo]
