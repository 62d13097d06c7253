"""Feature drift by PSI against the training rows' bins: nothing when the inputs look like training, a clear
signal when they moved or went missing."""

from __future__ import annotations

import numpy as np
import pandas as pd

from app.models import drift


def test_psi_is_near_zero_for_the_same_inputs_and_large_when_they_move_or_go_missing() -> None:
    rng = np.random.default_rng(0)
    training = pd.DataFrame({"days": rng.exponential(20, 5000), "channel": rng.choice(["sms", "email"], 5000)})
    training.loc[:499, "days"] = np.nan  # never happened: a bin of its own
    ref = drift.reference(training)
    assert set(ref) == {"days"} and len(ref["days"]["shares"]) == len(ref["days"]["edges"]) + 2
    assert abs(sum(ref["days"]["shares"]) - 1) < 1e-4

    same = pd.Series(rng.exponential(20, 3000))
    same[:300] = np.nan
    assert drift.psi(ref["days"]["shares"], drift.bin_counts(same, ref["days"]["edges"])) < 0.02
    later = pd.Series(rng.exponential(20, 3000) + 15)  # everyone 15 days staler
    assert drift.psi(ref["days"]["shares"], drift.bin_counts(later, ref["days"]["edges"])) > 0.2
    gone = pd.Series([np.nan] * 3000)  # the feed broke
    assert drift.psi(ref["days"]["shares"], drift.bin_counts(gone, ref["days"]["edges"])) > 1.0
    assert drift.psi(ref["days"]["shares"], np.zeros(len(ref["days"]["shares"]), dtype=np.int64)) == 0.0
