"""A seeded synthetic outreach history with its ground truth planted in it.

The generator is vectorised (NumPy / pandas): 100k customers and 1M events take seconds.
What it plants, so later evaluation can measure how well the models recover it
(`PLANTED_TRUTH` below, also written as `truth.json` beside the data):

* **Segments** with different base response rates, and per segment a best channel and a
  best local hour-of-week (Monday 00:00 = 0). The response log-odds of an attempt add
  `channel_effect[segment][channel]` and a slot bonus that peaks at the best hour-of-week
  (Gaussian in circular hours, sigma `slot_sigma_hours`) plus a smaller same-hour-any-day bonus.
* **Product interest driven by browsing**: each customer has one product of interest and
  views it most; an attempt about a product the customer viewed `d` days earlier adds
  `view_effect * exp(-d / view_decay_days)`.
* **Intents from service conversations**: a `pricing_question` in the 14 days before an
  attempt adds `pricing_effect`, an `upsell_interest` adds `upsell_effect`; a `complaint` subtracts.
* **Decay with days since last contact**: a contact within `fatigue_days` subtracts
  `fatigue_effect` (fatigue); after that the warmth of the last contact decays as
  `warmth_effect * exp(-d / warmth_decay_days)`.
* **Quiet hours respected**: every historical attempt is between 08:00 and 20:59 local time.
* **Sensitive industries**: a share of customers (healthcare, financial services, legal,
  public sector) is flagged sensitive.
* **Consent per channel** and a small do-not-contact share; attempts use consented channels only.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy.orm import Session, sessionmaker

from app.clock import utcnow
from app.domain import Channel, EventType, Intent
from app.features.pointintime import TimeIndex
from app.store.db import unit_of_work
from app.data.tables import Consent, Customer, Event, OutreachAttempt

CHANNELS = [c.value for c in Channel]
DAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
PRODUCTS = {
    "starter": "Starter Plan",
    "pro": "Pro Plan",
    "analytics": "Analytics Add-on",
    "support_plus": "Support Plus",
    "payments": "Payments",
}
PRODUCT_KEYS = list(PRODUCTS)

# segment: share, base rate, best channel, best local (weekday, hour), per-channel log-odds effect.
SEGMENTS: dict[str, dict[str, Any]] = {
    "smb_owner": {"share": 0.25, "base_rate": 0.06, "best_channel": "call", "best_slot": (1, 10),
                  "channel_effect": {"email": -0.3, "sms": -0.1, "call": 0.9, "chat": -0.4}},
    "enterprise_it": {"share": 0.15, "base_rate": 0.03, "best_channel": "email", "best_slot": (2, 9),
                      "channel_effect": {"email": 0.8, "sms": -0.8, "call": 0.0, "chat": -0.2}},
    "mid_market_ops": {"share": 0.20, "base_rate": 0.05, "best_channel": "chat", "best_slot": (3, 14),
                       "channel_effect": {"email": 0.0, "sms": -0.3, "call": 0.2, "chat": 0.8}},
    "consumer_young": {"share": 0.20, "base_rate": 0.08, "best_channel": "sms", "best_slot": (5, 18),
                       "channel_effect": {"email": -0.2, "sms": 0.9, "call": -0.7, "chat": 0.3}},
    "consumer_family": {"share": 0.15, "base_rate": 0.05, "best_channel": "email", "best_slot": (6, 19),
                        "channel_effect": {"email": 0.7, "sms": 0.2, "call": -0.3, "chat": -0.2}},
    "public_sector": {"share": 0.05, "base_rate": 0.02, "best_channel": "call", "best_slot": (3, 11),
                      "channel_effect": {"email": 0.2, "sms": -1.0, "call": 0.7, "chat": -0.5}},
}
SEGMENT_KEYS = list(SEGMENTS)
EFFECTS = {
    "slot_peak": 1.2, "slot_sigma_hours": 3.0, "hour_of_day_peak": 0.4, "hour_of_day_sigma": 2.0,
    "view_effect": 1.2, "view_decay_days": 7.0,
    "pricing_effect": 0.8, "upsell_effect": 0.6, "complaint_effect": -0.6, "intent_window_days": 14,
    "fatigue_days": 3, "fatigue_effect": 0.8, "warmth_effect": 0.4, "warmth_decay_days": 30.0,
    "customer_noise_sd": 0.4,
}
# Contact that hurts: procurement-led enterprise IT buyers buy on their own (renewals, seats: `own_purchases_per_30d`
# on average) and resent sales contact; after any contact, each purchase they would have made in the next `days`
# days is dropped with probability `lost_purchases`. What the uplift models must find: a segment whose best
# objective is worth less than the contact costs.
CONTACT_HURTS = {"segment": "enterprise_it", "own_purchases_per_30d": 0.5, "days": 30, "lost_purchases": 0.7}
INDUSTRIES = ["software", "retail", "manufacturing", "logistics", "education", "hospitality",
              "healthcare", "financial_services", "legal", "public_sector"]
SENSITIVE_INDUSTRIES = {"healthcare", "financial_services", "legal", "public_sector"}
INDUSTRY_WEIGHTS = [0.22, 0.15, 0.13, 0.1, 0.1, 0.1, 0.07, 0.06, 0.03, 0.04]
TIMEZONES = ["America/New_York", "America/Chicago", "America/Los_Angeles", "Europe/London",
             "Europe/Lisbon", "Europe/Berlin", "Asia/Singapore"]
TIMEZONE_WEIGHTS = [0.25, 0.12, 0.15, 0.15, 0.08, 0.15, 0.10]
CONSENT_RATES = {"email": 0.9, "sms": 0.6, "call": 0.8, "chat": 0.5}
QUIET_START, QUIET_END = 21, 8  # no historical contact from 21:00 to 07:59 local
FIRST_NAMES = ["Ana", "Ben", "Chloe", "Diego", "Emma", "Farah", "Gus", "Hana", "Ivan", "Julia", "Kofi", "Lena",
               "Marco", "Nina", "Omar", "Priya", "Quinn", "Rosa", "Sam", "Tara", "Umar", "Vera", "Wei", "Yara"]
LAST_NAMES = ["Silva", "Smith", "Chen", "Garcia", "Müller", "Okafor", "Patel", "Rossi", "Novak", "Kim",
              "Dubois", "Haddad", "Jensen", "Costa", "Nguyen", "Walsh"]
EVENT_TYPE_WEIGHTS = {EventType.PAGE_VIEW: 0.30, EventType.PRODUCT_VIEW: 0.35, EventType.EMAIL_OPEN: 0.13,
                      EventType.EMAIL_CLICK: 0.05, EventType.SERVICE_CONVERSATION: 0.12, EventType.PURCHASE: 0.05}
INTENTS = [i.value for i in Intent]
# Intent mix of service conversations by lifecycle stage (lead, active, churned), in INTENTS order.
INTENT_MIX = np.array([
    [0.45, 0.15, 0.00, 0.15, 0.15, 0.10],
    [0.15, 0.25, 0.25, 0.15, 0.15, 0.05],
    [0.30, 0.05, 0.30, 0.05, 0.05, 0.25],
])
CONVERSATION_TEXTS = {
    "pricing_question": ["How much is the {p} for a team of 20?", "Can you send me pricing for the {p}?",
                         "Is there a discount on the {p} if we pay yearly?"],
    "upsell_interest": ["We are outgrowing our plan, what does the {p} add?", "Could the {p} help our sales team?",
                        "Thinking about adding the {p} next quarter."],
    "renewal_risk": ["Not sure we will renew the {p}, it is expensive for us.",
                     "We are comparing the {p} with other vendors before renewal.",
                     "Our {p} contract ends soon and usage is low."],
    "implementation_blocker": ["The {p} import keeps failing on our CSV.", "We cannot connect the {p} to our SSO.",
                               "Setup of the {p} is stuck, can someone help?"],
    "change_request": ["Please move us to monthly billing for the {p}.", "Can we add two seats to the {p}?",
                       "We need to change the billing address on the {p}."],
    "complaint": ["The {p} was down twice this week.", "Support for the {p} took days to answer.",
                  "We were charged twice for the {p}."],
}
LIFECYCLES = ["lead", "active", "churned"]


def planted_truth() -> dict[str, Any]:
    """The ground truth as data: what evaluation should recover."""
    return {
        "segments": {
            name: {
                "share": s["share"], "base_rate": s["base_rate"], "best_channel": s["best_channel"],
                "best_hour_of_week": s["best_slot"][0] * 24 + s["best_slot"][1],
                "best_slot": f"{DAYS[s['best_slot'][0]]} {s['best_slot'][1]:02d}:00",
                "channel_effect": s["channel_effect"],
            }
            for name, s in SEGMENTS.items()
        },
        "effects": EFFECTS,
        "contact_hurts": CONTACT_HURTS,
        "sensitive_industries": sorted(SENSITIVE_INDUSTRIES),
        "consent_rates": CONSENT_RATES,
        "quiet_hours": {"start": QUIET_START, "end": QUIET_END},
        "hour_of_week": "local time of the customer, Monday 00:00 = 0 ... Sunday 23:00 = 167",
    }


def _logit(p: np.ndarray | float) -> np.ndarray | float:
    return np.log(p) - np.log1p(-np.asarray(p))


def slot_effect(segment_index: np.ndarray, hour_of_week: np.ndarray) -> np.ndarray:
    """Planted log-odds bonus of contacting at a local hour-of-week."""
    best = np.array([s["best_slot"][0] * 24 + s["best_slot"][1] for s in SEGMENTS.values()])[segment_index]
    distance = np.abs(hour_of_week - best)
    distance = np.minimum(distance, 168 - distance)
    hour_distance = np.abs(hour_of_week % 24 - best % 24)
    return (EFFECTS["slot_peak"] * np.exp(-(distance ** 2) / (2 * EFFECTS["slot_sigma_hours"] ** 2))
            + EFFECTS["hour_of_day_peak"] * np.exp(-(hour_distance ** 2) / (2 * EFFECTS["hour_of_day_sigma"] ** 2)))


def true_response_rate(segment: str, channel: str, hour_of_week: int) -> float:
    """Response probability for a customer of `segment` in a neutral state (no recent views,
    intents or contacts), by channel and local hour-of-week: the yardstick for regret."""
    s = SEGMENTS[segment]
    index = np.array([SEGMENT_KEYS.index(segment)])
    logit = _logit(s["base_rate"]) + s["channel_effect"][channel] + slot_effect(index, np.array([hour_of_week]))[0]
    return float(1 / (1 + np.exp(-logit)))


@dataclass
class SyntheticHistory:
    customers: pd.DataFrame
    consents: pd.DataFrame
    events: pd.DataFrame
    attempts: pd.DataFrame
    customer_truth: pd.DataFrame
    attempt_truth: pd.DataFrame
    truth: dict[str, Any] = field(default_factory=planted_truth)

    def write_parquet(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for name in ("customers", "consents", "events", "attempts", "customer_truth", "attempt_truth"):
            getattr(self, name).to_parquet(folder / f"{name}.parquet", index=False)
        (folder / "truth.json").write_text(json.dumps(self.truth, indent=2))


def _local_to_utc(local: pd.Series, tz_names: np.ndarray) -> pd.Series:
    """Naive local wall times to UTC, one vectorised conversion per time zone."""
    out = pd.Series(pd.NaT, index=local.index, dtype="datetime64[ns, UTC]")
    for tz in np.unique(tz_names):
        mask = tz_names == tz
        out[mask] = (local[mask].dt.tz_localize(tz, ambiguous="NaT", nonexistent="shift_forward")
                     .dt.tz_convert("UTC"))
    return out


def generate(*, customers: int = 5000, events_per_customer: float = 10.0, attempts_per_customer: float = 1.6,
             months: int = 13, seed: int = 0, now: datetime) -> SyntheticHistory:
    """A reproducible history ending at `now` (UTC): same seed and `now`, same data."""
    rng = np.random.default_rng(seed)
    n = customers
    end = pd.Timestamp(now).tz_convert("UTC") if pd.Timestamp(now).tzinfo else pd.Timestamp(now, tz="UTC")
    end = end.floor("h")
    span_s = months * 30 * 86400
    start = end - pd.Timedelta(seconds=span_s)

    # Customers.
    seg = rng.choice(len(SEGMENTS), size=n, p=[s["share"] for s in SEGMENTS.values()])
    tz = np.array(TIMEZONES)[rng.choice(len(TIMEZONES), size=n, p=TIMEZONE_WEIGHTS)]
    industry = np.array(INDUSTRIES)[rng.choice(len(INDUSTRIES), size=n, p=INDUSTRY_WEIGHTS)]
    consumer = np.isin(seg, [SEGMENT_KEYS.index("consumer_young"), SEGMENT_KEYS.index("consumer_family")])
    industry[consumer] = "consumer"
    industry[seg == SEGMENT_KEYS.index("public_sector")] = "public_sector"
    sensitive = np.isin(industry, list(SENSITIVE_INDUSTRIES))
    lifecycle = rng.choice(3, size=n, p=[0.5, 0.4, 0.1])
    age_mean = np.array([45, 44, 42, 27, 38, 48])[seg]
    age = np.clip(rng.normal(age_mean, 8), 18, 90).astype(int)
    interest = rng.integers(0, len(PRODUCTS), size=n)
    noise = rng.normal(0, EFFECTS["customer_noise_sd"], size=n)
    reps = rng.integers(1, 21, size=n)
    first = np.array(FIRST_NAMES)[rng.integers(0, len(FIRST_NAMES), size=n)]
    last = np.array(LAST_NAMES)[rng.integers(0, len(LAST_NAMES), size=n)]
    ids = np.char.add("cus-", np.char.zfill(np.arange(1, n + 1).astype(str), 6))
    ascii_last = np.char.lower(np.char.replace(last, "ü", "ue"))
    email = np.char.add(np.char.add(np.char.add(np.char.lower(first), "."), ascii_last),
                        np.char.add(np.char.add("+", np.arange(1, n + 1).astype(str)), "@example.com"))
    phone = np.char.add("+1 555 01", np.char.zfill((np.arange(n) % 100).astype(str), 2))
    created = start - pd.to_timedelta(rng.integers(0, 730 * 86400, size=n), unit="s")
    dnc = rng.random(n) < 0.02
    customer_frame = pd.DataFrame({
        "id": ids, "first_name": first, "last_name": last, "email": email, "phone": phone,
        "segment": np.array(SEGMENT_KEYS)[seg], "industry": industry,
        "lifecycle_stage": np.array(LIFECYCLES)[lifecycle], "timezone": tz, "age": age,
        "sensitive": sensitive, "do_not_contact": dnc,
        "owner_rep": np.char.add("rep-", np.char.zfill(reps.astype(str), 2)),
        "team": np.char.add("team-", np.array(list("abcd"))[(reps - 1) // 5]),
        "created_at": created,
    })
    customer_frame["attributes"] = [{}] * n
    # Planted per-customer truth stays out of the store, so no model can read it.
    truth_frame = pd.DataFrame({"customer_id": ids, "interest_product": np.array(PRODUCT_KEYS)[interest],
                                "propensity_noise": noise})

    # Consent per channel.
    consent_matrix = np.column_stack([rng.random(n) < CONSENT_RATES[c] for c in CHANNELS])
    consent_frame = pd.DataFrame({
        "customer_id": np.repeat(ids, len(CHANNELS)),
        "channel": np.tile(CHANNELS, n),
        "granted": consent_matrix.ravel(),
        "updated_at": np.repeat(created, len(CHANNELS)),
        "source": "synthetic",
    })

    # Events: behaviours and service conversations.
    activity = rng.gamma(2.0, events_per_customer / 2.0, size=n)
    counts = rng.poisson(activity)
    ev_cust = np.repeat(np.arange(n), counts)
    m = len(ev_cust)
    ev_time = rng.integers(0, span_s, size=m)
    types = list(EVENT_TYPE_WEIGHTS)
    ev_type = rng.choice(len(types), size=m, p=list(EVENT_TYPE_WEIGHTS.values()))
    ev_product = np.where(rng.random(m) < 0.7, interest[ev_cust], rng.integers(0, len(PRODUCTS), size=m))
    is_view = ev_type == types.index(EventType.PRODUCT_VIEW)
    is_conv = ev_type == types.index(EventType.SERVICE_CONVERSATION)
    has_product = is_view | is_conv | (ev_type == types.index(EventType.PURCHASE))
    cdf = np.cumsum(INTENT_MIX, axis=1)[lifecycle[ev_cust]]
    ev_intent = np.minimum((rng.random(m)[:, None] > cdf).sum(axis=1), len(INTENTS) - 1)
    variant = rng.integers(0, 3, size=m)
    text_table = np.array([[[t.format(p=PRODUCTS[p]) for t in CONVERSATION_TEXTS[i]] for p in PRODUCT_KEYS]
                           for i in INTENTS], dtype=object)
    ev_text = np.where(is_conv, text_table[ev_intent, ev_product, variant], None)
    event_frame = pd.DataFrame({
        "id": np.char.add("evt-", np.char.zfill(np.arange(1, m + 1).astype(str), 8)),
        "customer_id": ids[ev_cust],
        "occurred_at": start + pd.to_timedelta(ev_time, unit="s"),
        "type": np.array([t.value for t in types])[ev_type],
        "product": np.where(has_product, np.array(PRODUCT_KEYS, dtype=object)[ev_product], None),
        "intent": np.where(is_conv, np.array(INTENTS, dtype=object)[ev_intent], None),
        "channel": np.where(is_conv, np.array(["chat", "email", "call"], dtype=object)[variant], None),
        "text": ev_text,
    })
    event_frame["attributes"] = [{}] * m

    # Contact attempts at allowed local hours, on consented channels, about a product.
    a_counts = rng.poisson(attempts_per_customer, size=n)
    a_cust = np.repeat(np.arange(n), a_counts)
    day_offset = rng.integers(1, months * 30, size=len(a_cust))
    habit = rng.random(len(a_cust)) < 0.5
    hour = np.where(habit, rng.integers(9, 18, size=len(a_cust)), rng.integers(QUIET_END, QUIET_START, size=len(a_cust)))
    local_day = (start.tz_convert(None).normalize() + pd.to_timedelta(day_offset, unit="D"))
    local = pd.Series(local_day + pd.to_timedelta(hour, unit="h"))
    attempted = _local_to_utc(local, tz[a_cust])
    keep = attempted.notna().to_numpy() & (attempted < end).to_numpy()
    weights = np.array([0.35, 0.15, 0.35, 0.15]) * consent_matrix[a_cust]
    keep &= weights.sum(axis=1) > 0
    a_cust, hour, local, attempted, weights = (a_cust[keep], hour[keep], local[keep].reset_index(drop=True),
                                               attempted[keep].reset_index(drop=True), weights[keep])
    cum = np.cumsum(weights / weights.sum(axis=1, keepdims=True), axis=1)
    channel = np.minimum((rng.random(len(a_cust))[:, None] > cum).sum(axis=1), len(CHANNELS) - 1)
    a_product = np.where(rng.random(len(a_cust)) < 0.6, interest[a_cust], rng.integers(0, len(PRODUCTS), size=len(a_cust)))
    how = local.dt.day_of_week.to_numpy() * 24 + hour
    a_time = (attempted - start).dt.total_seconds().to_numpy().astype(np.int64)

    # Time-dependent state at each attempt, computed with sorted searches (no per-customer loop).
    views = TimeIndex((ev_cust * len(PRODUCTS) + ev_product)[is_view], ev_time[is_view])
    view_days = (a_time - views.last_before(a_cust * len(PRODUCTS) + a_product, a_time)) / 86400
    window = EFFECTS["intent_window_days"] * 86400

    def intent_count(intent: str) -> np.ndarray:
        mask = is_conv & (ev_intent == INTENTS.index(intent))
        return TimeIndex(ev_cust[mask], ev_time[mask]).count_between(a_cust, a_time - window, a_time)

    pricing, upsell, complaint = (intent_count(i) for i in ("pricing_question", "upsell_interest", "complaint"))
    contact_days = (a_time - TimeIndex(a_cust, a_time).last_before(a_cust, a_time)) / 86400

    base = np.array([_logit(s["base_rate"]) for s in SEGMENTS.values()])[seg[a_cust]]
    chan = np.array([[s["channel_effect"][c] for c in CHANNELS] for s in SEGMENTS.values()])[seg[a_cust], channel]
    logit = base + chan + slot_effect(seg[a_cust], how) + noise[a_cust]
    logit += np.where(np.isnan(view_days), 0.0,
                      EFFECTS["view_effect"] * np.exp(-np.nan_to_num(view_days) / EFFECTS["view_decay_days"]))
    logit += EFFECTS["pricing_effect"] * (pricing > 0) + EFFECTS["upsell_effect"] * (upsell > 0)
    logit += EFFECTS["complaint_effect"] * (complaint > 0)
    recent = ~np.isnan(contact_days)
    fatigued = recent & (contact_days < EFFECTS["fatigue_days"])
    warmth = EFFECTS["warmth_effect"] * np.exp(-np.nan_to_num(contact_days) / EFFECTS["warmth_decay_days"])
    logit += np.where(fatigued, -EFFECTS["fatigue_effect"], np.where(recent, warmth, 0.0))
    probability = 1 / (1 + np.exp(-logit))
    success = rng.random(len(a_cust)) < probability
    positive = np.array(["replied", "meeting", "converted"], dtype=object)[rng.choice(3, len(a_cust), p=[0.5, 0.3, 0.2])]
    negative = np.array(["no_answer", "declined"], dtype=object)[rng.choice(2, len(a_cust), p=[0.7, 0.3])]
    outcome = np.where(success, positive, negative)
    value = np.where(outcome == "converted", np.round(rng.lognormal(np.log(2000), 0.6, len(a_cust)), 2), np.nan)
    quarter = attempted.dt.year.astype(str) + "-q" + attempted.dt.quarter.astype(str)
    attempt_frame = pd.DataFrame({
        "id": np.char.add("att-", np.char.zfill(np.arange(1, len(a_cust) + 1).astype(str), 7)),
        "customer_id": ids[a_cust],
        "attempted_at": attempted,
        "channel": np.array(CHANNELS)[channel],
        "outcome": outcome,
        "template_id": None,
        "campaign": ("synthetic-" + quarter).to_numpy(),
        "product": np.array(PRODUCT_KEYS)[a_product],
        "rep_id": customer_frame["owner_rep"].to_numpy()[a_cust],
        "value": value,
    })
    attempt_frame["attributes"] = [{}] * len(attempt_frame)
    attempt_truth = pd.DataFrame({"attempt_id": attempt_frame["id"], "true_probability": probability})
    # The segment that buys on its own and the purchases a contact costs it (CONTACT_HURTS), drawn from their own
    # stream so every draw above stays the same.
    hurt_rng = np.random.default_rng([seed, 1])
    hurt = np.flatnonzero(seg == SEGMENT_KEYS.index(CONTACT_HURTS["segment"]))
    own = np.repeat(hurt, hurt_rng.poisson(CONTACT_HURTS["own_purchases_per_30d"] * months, len(hurt)))
    own_time = hurt_rng.integers(0, span_s, len(own))
    since_contact = own_time - TimeIndex(a_cust, a_time).last_before(own, own_time + 1)
    kept = ~((since_contact <= CONTACT_HURTS["days"] * 86400)
             & (hurt_rng.random(len(own)) < CONTACT_HURTS["lost_purchases"]))
    own, own_time = own[kept], own_time[kept]
    own_frame = pd.DataFrame({
        "id": np.char.add("evt-b", np.char.zfill(np.arange(1, len(own) + 1).astype(str), 8)),
        "customer_id": ids[own], "occurred_at": start + pd.to_timedelta(own_time, unit="s"),
        "type": EventType.PURCHASE.value, "product": np.array(PRODUCT_KEYS, dtype=object)[interest[own]],
        "intent": None, "channel": None, "text": None})
    own_frame["attributes"] = [{}] * len(own_frame)
    event_frame = pd.concat([event_frame, own_frame], ignore_index=True)
    attempt_frame = attempt_frame.sort_values("attempted_at", kind="stable").reset_index(drop=True)
    event_frame = event_frame.sort_values("occurred_at", kind="stable").reset_index(drop=True)
    return SyntheticHistory(customer_frame, consent_frame, event_frame, attempt_frame, truth_frame, attempt_truth)


def _rows(frame: pd.DataFrame) -> list[dict[str, Any]]:
    out = frame.astype(object).where(frame.notna(), None)
    for column in frame.columns:
        if isinstance(frame[column].dtype, pd.DatetimeTZDtype):
            out[column] = list(frame[column].array.to_pydatetime())
    return out.to_dict("records")


def load_into_store(history: SyntheticHistory, factory: sessionmaker[Session], *, chunk_rows: int = 50_000,
                    progress: Callable[[int], None] | None = None) -> dict[str, int]:
    """Replace the store's data spine with this history, in chunks of one transaction each."""
    tables = [(Customer, history.customers), (Consent, history.consents),
              (Event, history.events), (OutreachAttempt, history.attempts)]
    with unit_of_work(factory) as session:
        for table, _ in reversed(tables):
            session.execute(table.__table__.delete())
    written: dict[str, int] = {}
    for table, frame in tables:
        for begin in range(0, len(frame), chunk_rows):
            chunk = frame.iloc[begin:begin + chunk_rows]
            with unit_of_work(factory) as session:
                session.execute(table.__table__.insert(), _rows(chunk))
            if progress:
                progress(len(chunk))
        written[table.__tablename__] = len(frame)
    return written


def default_now(now: datetime | None = None) -> datetime:
    """The end of a generated history when none is given: the last full hour before `now` (UTC)."""
    return (now or utcnow()).astimezone(timezone.utc).replace(minute=0, second=0, microsecond=0) - timedelta(hours=1)
