"""Contact policy: consent, do-not-contact, quiet hours, frequency caps, cooldowns, sensitive customers.

The policy is data (`default_policy.yaml`, or the file in CONTACT_POLICY_FILE) applied at scoring
time, so changing it never needs a retrain. It is evaluated for all customers of a chunk at once;
every channel it closes records the rule that closed it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from app.domain import Channel, first_problem
from app.features.pointintime import TimeIndex, epoch_seconds

DEFAULT_POLICY_FILE = Path(__file__).with_name("default_policy.yaml")
CHANNELS = [c.value for c in Channel]
DAY = 86400


class PolicyError(ValueError):
    """A policy file that cannot be used; the message names the file and the field."""


class QuietHours(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: int = Field(ge=0, le=23)
    end: int = Field(ge=0, le=23)


class Cap(BaseModel):
    model_config = ConfigDict(extra="forbid")
    days: int = Field(ge=1)
    max: int = Field(ge=0)


class FrequencyCaps(BaseModel):
    model_config = ConfigDict(extra="forbid")
    customer: Cap
    channels: dict[Channel, Cap] = Field(default_factory=dict)


class Cooldowns(BaseModel):
    model_config = ConfigDict(extra="forbid")
    contact: float = Field(ge=0)
    decline: float = Field(ge=0)
    rejection: float = Field(ge=0)


class ContactPolicy(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1)
    quiet_hours: QuietHours
    consent_required: dict[Channel, bool]
    frequency_caps: FrequencyCaps
    cooldown_days: Cooldowns
    horizon_days: int = Field(ge=1, le=60)
    sensitive_requires_confirmation: bool = True

    @model_validator(mode="after")
    def _every_channel_has_a_consent_rule(self) -> ContactPolicy:
        missing = [c for c in CHANNELS if c not in self.consent_required]
        if missing:
            raise ValueError(f"consent_required: missing channel(s) {', '.join(missing)}")
        return self

    def allowed_hours(self) -> np.ndarray:
        """24 booleans: may a contact start at this local hour?"""
        hours = np.arange(24)
        start, end = self.quiet_hours.start, self.quiet_hours.end
        quiet = (hours >= start) | (hours < end) if start > end else (hours >= start) & (hours < end)
        return ~quiet

    def allowed_hours_of_week(self) -> np.ndarray:
        return np.tile(self.allowed_hours(), 7)


def load_policy(path: Path | None = None) -> ContactPolicy:
    path = path or DEFAULT_POLICY_FILE
    try:
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        return ContactPolicy.model_validate(raw)
    except FileNotFoundError:
        raise PolicyError(f"{path}: no such policy file") from None
    except yaml.YAMLError as exc:
        raise PolicyError(f"{path}: not valid YAML: {exc}") from None
    except ValidationError as exc:
        raise PolicyError(f"{path}: {first_problem(exc)}") from None


@dataclass
class PolicyOutcome:
    """Per customer: which channels are open, the earliest allowed contact time, and why others are closed."""

    allowed: np.ndarray  # (n, channels) bool
    earliest: np.ndarray  # (n,) epoch seconds
    closed_by: list[list[str]]  # per customer, the rules that closed channels or the customer
    requires_confirmation: np.ndarray  # (n,) bool

    @property
    def suppressed(self) -> np.ndarray:
        return ~self.allowed.any(axis=1)


def apply_policy(policy: ContactPolicy, *, now_s: int, customer_ids: pd.Series, do_not_contact: np.ndarray,
                 sensitive: np.ndarray, consents: pd.DataFrame, attempts: pd.DataFrame,
                 rejections: pd.DataFrame | None = None) -> PolicyOutcome:
    """Evaluate every rule for every customer. `attempts` has customer_id, attempted_at, channel, outcome;
    `rejections` (reps rejecting a recommendation) has customer_id and rejected_at."""
    n = len(customer_ids)
    code = pd.Index(customer_ids)
    allowed = np.ones((n, len(CHANNELS)), dtype=bool)
    closed: list[list[str]] = [[] for _ in range(n)]

    def close(mask: np.ndarray, column: int | None, rule: str) -> None:
        for i in np.flatnonzero(mask & (allowed.any(axis=1) if column is None else allowed[:, column])):
            closed[i].append(rule)
        if column is None:
            allowed[mask] = False
        else:
            allowed[mask, column] = False

    close(np.asarray(do_not_contact, dtype=bool), None, "do_not_contact")
    if not policy.allowed_hours().any():
        close(np.ones(n, dtype=bool), None, "quiet_hours")

    granted = consents.pivot_table(index="customer_id", columns="channel", values="granted", aggfunc="last") \
        if len(consents) else pd.DataFrame()
    for j, channel in enumerate(CHANNELS):
        state = granted[channel].reindex(code) if channel in granted else pd.Series(np.nan, index=code)
        state = state.astype("float").to_numpy()
        needs_explicit = policy.consent_required[Channel(channel)]
        no_consent = (state == 0) | (np.isnan(state) if needs_explicit else np.zeros(n, dtype=bool))
        close(no_consent, j, f"no_consent:{channel}")

    a_code = code.get_indexer(attempts["customer_id"]) if len(attempts) else np.zeros(0, dtype=np.int64)
    a_time = epoch_seconds(attempts["attempted_at"]) if len(attempts) else np.zeros(0, dtype=np.int64)
    keep = a_code >= 0
    now = np.full(n, now_s, dtype=np.int64)
    everyone = np.arange(n)
    cap = policy.frequency_caps.customer
    contacts = TimeIndex(a_code[keep], a_time[keep])
    close(contacts.count_between(everyone, now - cap.days * DAY, now + 1) >= cap.max, None, "frequency_cap:customer")
    for j, channel in enumerate(CHANNELS):
        channel_cap = policy.frequency_caps.channels.get(Channel(channel))
        if channel_cap is None:
            continue
        on_channel = keep & (attempts["channel"].to_numpy() == channel) if len(attempts) else keep
        index = TimeIndex(a_code[on_channel], a_time[on_channel])
        close(index.count_between(everyone, now - channel_cap.days * DAY, now + 1) >= channel_cap.max, j,
              f"frequency_cap:{channel}")

    earliest = now.astype(np.float64)
    cooldown_sources = [("contact", contacts)]
    declined = keep & (attempts["outcome"].to_numpy() == "declined") if len(attempts) else keep
    cooldown_sources.append(("decline", TimeIndex(a_code[declined], a_time[declined])))
    if rejections is not None and len(rejections):
        r_code = code.get_indexer(rejections["customer_id"])
        r_time = epoch_seconds(rejections["rejected_at"])
        cooldown_sources.append(("rejection", TimeIndex(r_code[r_code >= 0], r_time[r_code >= 0])))
    horizon_end = now_s + policy.horizon_days * DAY
    for rule, index in cooldown_sources:
        last = index.last_before(everyone, now + 1)
        until = last + getattr(policy.cooldown_days, rule) * DAY
        active = ~np.isnan(until) & (until > now)
        earliest = np.where(active, np.maximum(earliest, until), earliest)
        close(active & (until >= horizon_end), None, f"cooldown:{rule}")

    confirm = np.asarray(sensitive, dtype=bool) & policy.sensitive_requires_confirmation
    return PolicyOutcome(allowed, earliest, closed, confirm)
