"""Reading the history back from the store gives the same typed frames on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timezone

import pandas as pd

from app.data.synthetic import generate, load_into_store
from app.features.build import load_history
from app.store.db import unit_of_work
from app.data.tables import Customer, Event
from tests.conftest import NOW


def test_history_round_trips_with_types(store) -> None:
    history = generate(customers=200, now=NOW, seed=2)
    load_into_store(history, store)
    loaded = load_history(store)
    assert len(loaded.customers) == 200 and len(loaded.events) == len(history.events)
    assert loaded.customers["sensitive"].dtype == bool and isinstance(loaded.customers["attributes"][0], dict)
    expected = history.events.sort_values("id")["occurred_at"].reset_index(drop=True)
    got = loaded.events.sort_values(["occurred_at"]).reset_index(drop=True)["occurred_at"]
    # The same instants; the unit pandas picks (ns or us) varies with the pandas / numpy versions installed.
    pd.testing.assert_series_equal(got.sort_values().reset_index(drop=True).dt.as_unit("us"),
                                   expected.sort_values().reset_index(drop=True).dt.as_unit("us"),
                                   check_names=False)
    assert str(loaded.attempts["attempted_at"].dt.tz) == "UTC"


def test_only_the_asked_customers_and_quotes_in_ids_are_safe(store) -> None:
    odd = "o'brien; drop table events; --"
    with unit_of_work(store) as session:
        for customer in (odd, "plain"):
            session.add(Customer(id=customer, attributes={"note": "it's"}))
            session.flush()
            session.add(Event(id=f"e-{customer}", customer_id=customer, type="page_view", attributes={},
                              occurred_at=datetime(2026, 1, 1, tzinfo=timezone.utc)))
    chunk = load_history(store, [odd])
    assert chunk.customers["id"].tolist() == [odd] and chunk.customers["attributes"][0] == {"note": "it's"}
    assert chunk.events["customer_id"].tolist() == [odd]
    assert len(load_history(store).events) == 2  # nothing was dropped
    empty = load_history(store, ["nobody"])
    assert empty.customers.empty and empty.events.empty


def test_conversations_closed_unresolved_are_counted_on_sqlite_and_postgresql(store) -> None:
    from app.features.build import FeatureBuilder

    day = datetime(2026, 1, 10, tzinfo=timezone.utc)
    with unit_of_work(store) as session:
        session.add(Customer(id="c-1", attributes={}))
        session.flush()
        for i, flag in enumerate([False, False, True, None]):
            attributes = {} if flag is None else {"resolution_flag": flag}
            session.add(Event(id=f"conv-{i}", customer_id="c-1", type="service_conversation", attributes=attributes,
                              occurred_at=day - pd.Timedelta(days=i + 1)))
        session.add(Event(id="old", customer_id="c-1", type="service_conversation",
                          attributes={"resolution_flag": False}, occurred_at=day - pd.Timedelta(days=45)))
    rows = FeatureBuilder(load_history(store)).rows(pd.Series(["c-1"]), pd.Series([day]), pd.Series(["email"]),
                                                     pd.Series([None]))
    assert rows["unresolved_conversations_30d"].tolist() == [2]  # not the resolved, the unsaid, or the old one
