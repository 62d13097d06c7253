"""Feature drift: how far the features a scoring run saw moved from those the model was trained on.

Training keeps, per numeric feature, the deciles of its training rows and the share in each (missing values
in a bin of their own); scoring counts its rows into the same bins, chunk by chunk, and the run records each
feature's population stability index (PSI; above 0.2 is the usual "it moved" line)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

REFERENCE_FILE = "feature_reference.json"
BINS = 10


def bin_counts(values: pd.Series | np.ndarray, edges: list[float]) -> np.ndarray:
    """Counts per bin between `edges` (inner edges, ascending), then the missing values."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(np.float64)
    missing = np.isnan(v)
    counts = np.bincount(np.searchsorted(np.asarray(edges, dtype=np.float64), v[~missing], side="right"),
                         minlength=len(edges) + 1)
    return np.append(counts, missing.sum()).astype(np.int64)


def reference(features: pd.DataFrame) -> dict[str, dict[str, list[float]]]:
    """Each numeric feature's bins on the training rows: inner decile edges and the share of rows per bin."""
    out: dict[str, dict[str, list[float]]] = {}
    for name in features.columns:
        if not pd.api.types.is_numeric_dtype(features[name]):
            continue
        v = features[name].to_numpy(np.float64)
        present = v[~np.isnan(v)]
        if len(present) < 2 * BINS:
            continue
        edges = np.unique(np.quantile(present, np.linspace(0, 1, BINS + 1))[1:-1]).tolist()
        out[name] = {"edges": [round(e, 6) for e in edges],
                     "shares": [round(float(s), 6) for s in bin_counts(v, edges) / len(v)]}
    return out


def stability_index(expected_shares: np.ndarray, actual_shares: np.ndarray) -> float:
    """PSI of two distributions over the same bins (empty bins count as 0.01 %, so the log stays finite)."""
    e = np.clip(np.asarray(expected_shares, dtype=np.float64), 1e-4, None)
    a = np.clip(np.asarray(actual_shares, dtype=np.float64), 1e-4, None)
    return float(np.sum((a - e) * np.log(a / e)))


def psi(expected_shares: list[float], counts: np.ndarray) -> float:
    """PSI of counts into a reference's bins against the reference's shares (0 when nothing was counted)."""
    total = counts.sum()
    return round(stability_index(np.asarray(expected_shares), counts / total), 4) if total else 0.0


def save(folder: Path, ref: dict) -> None:
    (folder / REFERENCE_FILE).write_text(json.dumps(ref))


def load(folder: Path) -> dict | None:
    """The bundle's reference, or None for a version trained before references were kept (no drift then)."""
    path = folder / REFERENCE_FILE
    return json.loads(path.read_text()) if path.exists() else None
