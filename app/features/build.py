"""Features as of a point in time, vectorised: nothing from at or after T reaches a row for T.

One row describes one (customer, moment, contact plan): the customer's profile, their
behaviour and service intents before the moment, their contact history before it, the
season, and the plan itself (channel, product, local hour-of-week). Training rows are past
attempts as of their own time; scoring rows are candidates as of "now".
"""

from __future__ import annotations

import json
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sqlalchemy import JSON, Boolean, case, false, select
from sqlalchemy.orm import Session, sessionmaker

from app.domain import POSITIVE_OUTCOMES, TRACE_ATTRIBUTES, EventType, Intent
from app.features.pointintime import TimeIndex, epoch_seconds
from app.data.tables import Consent, Customer, Event, OutreachAttempt
from app.store.base import UTCDateTime

DAY = 86400
BEHAVIOUR_TYPES = [t.value for t in EventType if t != EventType.SERVICE_CONVERSATION]
# Intents counted as features: those an event may be posted with, and the buying signals the taxonomy's
# classifier reads in conversations (competitor mentions, procurement reviews).
INTENTS = [i.value for i in Intent] + ["competitive_switch", "procurement_review"]
INTENT_WINDOW_DAYS = 14
# The intent group: what service conversations say (intent counts in the window) and how recent they are.
INTENT_FEATURES = [f"{intent}_14d" for intent in INTENTS] + ["unresolved_conversations_30d",
    f"{EventType.SERVICE_CONVERSATION.value}s_30d", f"days_since_{EventType.SERVICE_CONVERSATION.value}"]
# An attempt's outcome is taken as known one day after the attempt, not at the same instant.
OUTCOME_LAG_S = DAY
PROFILE_CATEGORIES = ["segment", "industry", "lifecycle_stage"]
CONTEXT_CATEGORIES = ["channel", "product"]
POSITIVE = sorted(str(o) for o in POSITIVE_OUTCOMES)
CONTEXT_PREFIX = "context_"  # columns from an attempt's own attributes (campaign context)


@dataclass
class History:
    """The data spine as frames: what feature engineering reads."""

    customers: pd.DataFrame
    consents: pd.DataFrame
    events: pd.DataFrame
    attempts: pd.DataFrame


def _frame(session: Session, columns: list, where=None) -> pd.DataFrame:  # noqa: ANN001
    """Rows as a frame, typed column by column in pandas rather than value by value in Python:
    on millions of events this reads about five times faster than ORM result processing."""
    statement = select(*columns)
    if where is not None:
        statement = statement.where(where)
    connection = session.connection()
    sql = statement.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True}).string
    result = connection.exec_driver_sql(sql)
    # The driver's own tuples: pandas probes SQLAlchemy Row objects attribute by attribute, slowly.
    rows = result.cursor.fetchall() if result.cursor is not None else []
    result.close()
    frame = pd.DataFrame.from_records(rows, columns=[c.key for c in columns])
    for column in columns:
        kind = column.type
        if isinstance(kind, UTCDateTime):
            # SQLite hands back naive UTC text, PostgreSQL aware datetimes: both parse to UTC.
            frame[column.key] = pd.to_datetime(frame[column.key], utc=True, format="ISO8601")
        elif isinstance(kind, Boolean):
            frame[column.key] = frame[column.key].astype(bool)
        elif isinstance(kind, JSON):
            frame[column.key] = frame[column.key].map(lambda v: json.loads(v) if isinstance(v, str) else v)
    return frame


def load_history(factory: sessionmaker[Session], customer_ids: list[str] | None = None) -> History:
    """Read the spine from the store, for all customers or for the given ones (a scoring chunk)."""
    def only(column):  # noqa: ANN001, ANN202
        return column.in_(customer_ids) if customer_ids is not None else None

    with factory() as session:
        customers = _frame(session, [Customer.id, Customer.segment, Customer.industry, Customer.lifecycle_stage,
                                     Customer.timezone, Customer.age, Customer.sensitive, Customer.do_not_contact,
                                     Customer.owner_rep, Customer.team, Customer.created_at, Customer.attributes],
                           only(Customer.id))
        consents = _frame(session, [Consent.customer_id, Consent.channel, Consent.granted], only(Consent.customer_id))
        # A conversation the help desk closed unresolved (resolution_flag false), read by the database from
        # the event's attributes: 1, else 0 (resolved, or not said).
        unresolved = case((Event.attributes["resolution_flag"].as_boolean() == false(), 1), else_=0).label("unresolved")
        events = _frame(session, [Event.customer_id, Event.occurred_at, Event.type, Event.product, Event.intent,
                                  unresolved], only(Event.customer_id))
        attempts = _frame(session, [OutreachAttempt.id, OutreachAttempt.customer_id, OutreachAttempt.attempted_at,
                                    OutreachAttempt.channel, OutreachAttempt.product, OutreachAttempt.outcome,
                                    OutreachAttempt.value, OutreachAttempt.attributes], only(OutreachAttempt.customer_id))
    return History(customers, consents, events, attempts)


# The moment's own columns: for a scoring row they are the plan's time (chosen by the product), not an input.
TIME_FEATURES = ["hour", "day_of_week", "month", "hour_of_week"]


def local_times(utc: pd.Series, zones: pd.Series) -> pd.DataFrame:
    """Local hour, day of week, month and hour-of-week (Monday 00:00 = 0) of UTC times in each row's zone."""
    utc = pd.to_datetime(utc, utc=True)
    hour = np.zeros(len(utc), dtype=np.int64)
    dow = np.zeros(len(utc), dtype=np.int64)
    month = np.zeros(len(utc), dtype=np.int64)
    zones = zones.fillna("UTC").to_numpy()
    for zone in pd.unique(zones):
        mask = zones == zone
        local = utc[mask].dt.tz_convert(zone)
        hour[mask], dow[mask], month[mask] = local.dt.hour, local.dt.day_of_week, local.dt.month
    return pd.DataFrame(dict(zip(TIME_FEATURES, (hour, dow, month, dow * 24 + hour))), index=utc.index)


def _expand(attributes: pd.Series, prefix: str, leave_out: frozenset[str] = frozenset()) -> pd.DataFrame:
    """Free-form `attributes` dicts as typed columns (numbers stay numbers, the rest categories), but `leave_out`."""
    frame = pd.json_normalize(attributes.map(
        lambda a: {k: v for k, v in a.items() if k not in leave_out} if isinstance(a, dict) else {}).tolist())
    frame.index = attributes.index
    frame.columns = [f"{prefix}{c}" for c in frame.columns]
    for column in frame.columns:
        numeric = pd.to_numeric(frame[column], errors="coerce")
        if numeric.notna().sum() == frame[column].notna().sum():
            frame[column] = numeric.astype(np.float64)
        else:
            frame[column] = frame[column].astype("string").astype(object)
    return frame


class FeatureBuilder:
    """Indexes a history once, then builds rows for any (customer, time, plan) queries."""

    def __init__(self, history: History) -> None:
        self.customers = history.customers.set_index("id", drop=False)
        self.code = pd.Index(self.customers["id"])
        self._products = pd.Index(sorted(set(history.events["product"].dropna())
                                         | set(history.attempts["product"].dropna())))
        events = history.events
        event_code = self.code.get_indexer(events["customer_id"])
        event_time = epoch_seconds(events["occurred_at"])
        known_event = event_code >= 0

        def events_where(mask: pd.Series) -> TimeIndex:
            chosen = known_event & mask.to_numpy()
            return TimeIndex(event_code[chosen], event_time[chosen])

        self._by_type = {t: events_where(events["type"] == t)
                         for t in BEHAVIOUR_TYPES + [EventType.SERVICE_CONVERSATION.value]}
        self._by_intent = {i: events_where(events["intent"] == i) for i in INTENTS}
        unresolved = events["unresolved"] == 1 if "unresolved" in events else pd.Series(False, index=events.index)
        self._unresolved = events_where(unresolved & (events["type"] == EventType.SERVICE_CONVERSATION.value))
        views = known_event & (events["type"] == EventType.PRODUCT_VIEW.value).to_numpy() & events["product"].notna().to_numpy()
        self._product_views = TimeIndex(event_code[views] * max(len(self._products), 1)
                                        + self._products.get_indexer(events["product"][views]), event_time[views])
        self._any_view = TimeIndex(event_code[views], event_time[views])
        attempts = history.attempts
        attempt_code = self.code.get_indexer(attempts["customer_id"])
        attempt_time = epoch_seconds(attempts["attempted_at"])
        known_attempt = attempt_code >= 0

        def attempts_where(mask: pd.Series, lag_s: int = 0) -> TimeIndex:
            chosen = known_attempt & mask.to_numpy()
            return TimeIndex(attempt_code[chosen], attempt_time[chosen] + lag_s)

        self._contacts = TimeIndex(attempt_code[known_attempt], attempt_time[known_attempt])
        # An outcome (a response, a "no") becomes known OUTCOME_LAG_S after its attempt.
        self._responses = attempts_where(attempts["outcome"].isin(POSITIVE), OUTCOME_LAG_S)
        self._declines = attempts_where(attempts["outcome"] == "declined", OUTCOME_LAG_S)
        self._profile = self._profile_frame()

    def _profile_frame(self) -> pd.DataFrame:
        c = self.customers
        profile = pd.DataFrame({name: c[name].astype("string").astype(object) for name in PROFILE_CATEGORIES})
        profile["age"] = pd.to_numeric(c["age"], errors="coerce").astype(np.float64)
        profile["created_at_s"] = epoch_seconds(c["created_at"].fillna(pd.Timestamp("1970-01-01", tz="UTC")))
        profile.loc[c["created_at"].isna().to_numpy(), "created_at_s"] = np.nan
        expanded = _expand(c["attributes"], "profile_")
        return pd.concat([profile, expanded], axis=1).reset_index(drop=True)

    def rows(self, customer_ids: pd.Series, at: pd.Series, channel: pd.Series, product: pd.Series,
             context: pd.DataFrame | None = None) -> pd.DataFrame:
        """Feature rows for each query: customer, UTC time, planned channel and product."""
        code = self.code.get_indexer(customer_ids)
        if (code < 0).any():
            unknown = customer_ids[code < 0].iloc[0]
            raise ValueError(f"unknown customer {unknown!r}")
        t = epoch_seconds(at)
        index = customer_ids.index
        out = self._profile.iloc[code].reset_index(drop=True)
        out.index = index
        out["tenure_days"] = (t - out.pop("created_at_s").to_numpy()) / DAY
        local = local_times(pd.Series(pd.to_datetime(at, utc=True).to_numpy(), index=index),
                            pd.Series(self.customers["timezone"].to_numpy()[code], index=index))
        out = pd.concat([out, local], axis=1)
        out["channel"] = channel.astype("string").astype(object).to_numpy()
        out["product"] = product.astype("string").astype(object).to_numpy()

        def days_since(index_: TimeIndex, keys: np.ndarray) -> np.ndarray:
            return (t - index_.last_before(keys, t)) / DAY

        for event_type, idx in self._by_type.items():
            out[f"{event_type}s_30d"] = idx.count_between(code, t - 30 * DAY, t)
            out[f"days_since_{event_type}"] = days_since(idx, code)
        product_code = self._products.get_indexer(product.fillna(""))
        product_key = code * max(len(self._products), 1) + np.clip(product_code, 0, None)
        has_product = product_code >= 0
        out["product_views_7d"] = np.where(has_product, self._product_views.count_between(product_key, t - 7 * DAY, t), 0)
        out["days_since_product_view"] = np.where(has_product, days_since(self._product_views, product_key), np.nan)
        out["days_since_any_product_view"] = days_since(self._any_view, code)
        for intent, idx in self._by_intent.items():
            out[f"{intent}_14d"] = idx.count_between(code, t - INTENT_WINDOW_DAYS * DAY, t)
        out["unresolved_conversations_30d"] = self._unresolved.count_between(code, t - 30 * DAY, t)
        out["days_since_last_contact"] = days_since(self._contacts, code)
        out["contacts_30d"] = self._contacts.count_between(code, t - 30 * DAY, t)
        out["previous_contacts"] = self._contacts.count_between(code, np.zeros_like(t), t)
        out["previous_responses"] = self._responses.count_between(code, np.zeros_like(t), t)
        out["days_since_last_response"] = days_since(self._responses, code)
        out["days_since_last_decline"] = days_since(self._declines, code)
        if context is not None and len(context.columns):
            out = pd.concat([out, context.set_axis(index)], axis=1)
        return out


    def product_interest(self, customer_ids: pd.Series, at: pd.Series) -> pd.DataFrame:
        """Per known product, days since the customer last viewed it before each time: which offer a customer
        leans to, for the models that compare offers (the propensity rows carry only the planned product's)."""
        code = self.code.get_indexer(customer_ids)
        t = epoch_seconds(at)
        width = max(len(self._products), 1)
        return pd.DataFrame({f"days_since_viewed_{product}": (t - self._product_views.last_before(code * width + j, t)) / DAY
                             for j, product in enumerate(self._products)}, index=customer_ids.index)


def training_frame(history: History) -> tuple[pd.DataFrame, pd.Series, pd.Series]:
    """One row per past attempt, featured as of its own time; the target is a positive outcome.
    Returns features, target and attempt times (for time-ordered splits)."""
    attempts = history.attempts.reset_index(drop=True)
    builder = FeatureBuilder(history)
    # The product's own trace on attempts it recorded (card, arm) is not campaign context.
    context = _expand(attempts["attributes"], CONTEXT_PREFIX, TRACE_ATTRIBUTES) if "attributes" in attempts else None
    features = builder.rows(attempts["customer_id"], attempts["attempted_at"], attempts["channel"],
                            attempts["product"], context)
    target = attempts["outcome"].isin(POSITIVE)
    return features, target, pd.to_datetime(attempts["attempted_at"], utc=True)
