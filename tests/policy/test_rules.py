"""Every contact-policy rule closes what it should and says so; the policy is data, not a retrain."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from app.policy.rules import CHANNELS, DEFAULT_POLICY_FILE, PolicyError, apply_policy, load_policy

NOW = datetime(2026, 11, 2, 12, 0, tzinfo=timezone.utc)
NOW_S = int(NOW.timestamp())
ALL = {c: True for c in CHANNELS}


def run(consents: dict[str, dict[str, bool]] | None = None, attempts: list[tuple] = (), *, dnc=False,
        sensitive=False, rejections: list[datetime] = (), policy=None):
    policy = policy or load_policy()
    consent_rows = [{"customer_id": "c1", "channel": ch, "granted": ok}
                    for ch, ok in ((consents or {"c1": ALL})["c1"]).items()]
    attempt_rows = pd.DataFrame([{"customer_id": "c1", "attempted_at": at, "channel": ch, "outcome": outcome}
                                 for at, ch, outcome in attempts],
                                columns=["customer_id", "attempted_at", "channel", "outcome"])
    rejection_rows = pd.DataFrame([{"customer_id": "c1", "rejected_at": at} for at in rejections],
                                  columns=["customer_id", "rejected_at"])
    result = apply_policy(policy, now_s=NOW_S, customer_ids=pd.Series(["c1"]), do_not_contact=np.array([dnc]),
                          sensitive=np.array([sensitive]),
                          consents=pd.DataFrame(consent_rows, columns=["customer_id", "channel", "granted"]),
                          attempts=attempt_rows, rejections=rejection_rows)
    allowed = {c for c, ok in zip(CHANNELS, result.allowed[0]) if ok}
    return allowed, result.closed_by[0], result.earliest[0], result.requires_confirmation[0]


def test_everything_open_with_consent_and_no_history() -> None:
    allowed, closed, earliest, confirm = run()
    assert allowed == set(CHANNELS) and closed == [] and earliest == NOW_S and not confirm


def test_do_not_contact_closes_every_channel() -> None:
    allowed, closed, _, _ = run(dnc=True)
    assert allowed == set() and closed == ["do_not_contact"]


def test_consent_revoked_or_missing_where_explicit_consent_is_required() -> None:
    allowed, closed, _, _ = run({"c1": {"email": False}})
    # Email was revoked; SMS and calls need explicit consent that is missing; chat needs none.
    assert allowed == {"chat"}
    assert closed == ["no_consent:email", "no_consent:sms", "no_consent:call"]


def test_frequency_caps_per_customer_and_per_channel() -> None:
    one_sms = [(NOW - timedelta(days=3), "sms", "no_answer")]
    allowed, closed, _, _ = run(attempts=one_sms)
    assert "sms" not in allowed and "frequency_cap:sms" in closed
    two = [(NOW - timedelta(days=3), "email", "no_answer"), (NOW - timedelta(days=5), "email", "no_answer")]
    allowed, closed, _, _ = run(attempts=two)
    assert allowed == set() and "frequency_cap:customer" in closed
    old = [(NOW - timedelta(days=8), "sms", "no_answer")]
    assert "sms" in run(attempts=old)[0]


def test_cooldowns_push_the_earliest_contact_or_suppress() -> None:
    _, closed, earliest, _ = run(attempts=[(NOW - timedelta(days=1), "email", "no_answer")])
    assert earliest == NOW_S + 1 * 86400 and closed == []  # 2-day cooldown after a contact
    allowed, closed, _, _ = run(attempts=[(NOW - timedelta(days=3), "call", "declined")])
    assert allowed == set() and "cooldown:decline" in closed  # 14 days reach past the 7-day horizon
    _, closed, earliest, _ = run(rejections=[NOW - timedelta(days=2)])
    assert earliest == NOW_S + 5 * 86400 and closed == []
    allowed, closed, _, _ = run(rejections=[NOW])
    assert allowed == set() and closed == ["cooldown:rejection"]


def test_sensitive_customers_need_confirmation_but_are_not_suppressed() -> None:
    allowed, _, _, confirm = run(sensitive=True)
    assert allowed == set(CHANNELS) and confirm


def test_quiet_hours_wrap_midnight_and_are_configurable(tmp_path: Path) -> None:
    policy = load_policy()
    hours = policy.allowed_hours()
    assert not hours[21] and not hours[7] and hours[8] and hours[20]
    text = DEFAULT_POLICY_FILE.read_text().replace("{start: 21, end: 8}", "{start: 18, end: 9}")
    custom = tmp_path / "policy.yaml"
    custom.write_text(text)
    hours = load_policy(custom).allowed_hours()
    assert list(np.flatnonzero(hours)) == list(range(9, 18))


def test_a_policy_change_applies_without_retraining(tmp_path: Path) -> None:
    text = DEFAULT_POLICY_FILE.read_text().replace("sms: true, call: true", "sms: false, call: false")
    relaxed = tmp_path / "relaxed.yaml"
    relaxed.write_text(text)
    assert run({"c1": {}}, policy=load_policy(relaxed))[0] == set(CHANNELS)
    assert run({"c1": {}})[0] == {"email", "chat"}


@pytest.mark.parametrize(("text", "message"), [
    ("version: x\n", "quiet_hours"),
    ("[", "not valid YAML"),
])
def test_bad_policy_files_are_named(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "p.yaml"
    path.write_text(text)
    with pytest.raises(PolicyError, match="p.yaml") as info:
        load_policy(path)
    assert message in str(info.value)
