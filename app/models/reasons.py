"""Human-readable reasons from the model's own TreeSHAP contributions, via an editable template table."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from app.domain import first_problem

DEFAULT_REASON_FILE = Path(__file__).with_name("reason_templates.yaml")
MIN_CONTRIBUTION = 0.02  # log-odds: below this a feature did not really push the decision
MAX_REASONS = 3
CHANNEL_NAMES = {"email": "Email", "sms": "SMS", "call": "A phone call", "chat": "Chat"}


class ReasonTemplate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    text: str
    # Context reasons (who the customer is, when to call) come after signals (what the customer did).
    context: bool = False
    min: float | None = None
    max: float | None = None


class ReasonTable(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str
    products: dict[str, str] = Field(default_factory=dict)
    reasons: dict[str, ReasonTemplate]

    def product_name(self, key: Any) -> str:
        if key is None or (isinstance(key, float) and math.isnan(key)):
            return "our products"
        return self.products.get(str(key), str(key).replace("_", " "))


def load_reason_table(path: Path | None = None) -> ReasonTable:
    path = path or DEFAULT_REASON_FILE
    try:
        return ReasonTable.model_validate(yaml.safe_load(Path(path).read_text(encoding="utf-8")))
    except (OSError, yaml.YAMLError) as exc:
        raise ValueError(f"{path}: cannot read reason templates: {exc}") from None
    except ValidationError as exc:
        raise ValueError(f"{path}: {first_problem(exc)}") from None


def _times(value: float) -> str:
    count = int(round(value))
    return {1: "once", 2: "twice"}.get(count, f"{count} times")


def render(template: ReasonTemplate, feature: str, value: Any, row: dict[str, Any], table: ReasonTable) -> str | None:
    """The sentence for one feature of one row, or None when the value makes it untrue or unknown."""
    numeric = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    if numeric:
        if math.isnan(float(value)):
            return None
        if (template.min is not None and value < template.min) or (template.max is not None and value > template.max):
            return None
    elif value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return None
    days = int(round(float(value))) if numeric else 0
    return template.text.format(
        value=value, days=days, times=_times(float(value)) if numeric else "", product=table.product_name(row.get("product")),
        channel=CHANNEL_NAMES.get(str(row.get("channel")), str(row.get("channel"))),
        category=str(value).replace("_", " "),
    )


def explain(features: pd.DataFrame, contributions: pd.DataFrame, table: ReasonTable,
            limit: int = MAX_REASONS) -> list[list[dict[str, Any]]]:
    """Per row, up to `limit` reasons: the features that pushed the score up most and have a true sentence."""
    # Only features with a sentence can become reasons: rank those alone, and read rows as plain dicts.
    columns = [c for c in contributions.columns if c in table.reasons]
    values = contributions[columns].to_numpy()
    order = np.argsort(-values, axis=1)
    rows = features.to_dict("records")
    out: list[list[dict[str, Any]]] = []
    for i, row in enumerate(rows):
        signals: list[dict[str, Any]] = []
        context: list[dict[str, Any]] = []
        for j in order[i]:
            weight = values[i, j]
            if weight < MIN_CONTRIBUTION or len(signals) >= limit:
                break
            feature = columns[j]
            template = table.reasons[feature]
            value = row[feature]
            text = render(template, feature, value, row, table)
            if text:
                reason = {"feature": feature, "text": text, "contribution": round(float(weight), 4),
                          "value": value.item() if hasattr(value, "item") else value}
                (context if template.context else signals).append(reason)
        out.append((signals + context)[:limit])
    return out
