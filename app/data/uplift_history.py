"""Synthetic outreach histories with planted heterogeneous effects, to develop and check the uplift models on:
the true effect of contact is known per row, positive for some customers, nil for others, negative for some.

    uplift_history(n, seed)  one treatment (e-mail) against no contact, one conversion outcome, `true_effect`
    kpi_history(n, seed)     two treatments (e-mail, call) against no contact, three KPIs (visit, conversion, spend)
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def uplift_history(n: int, seed: int, randomised: bool = True) -> pd.DataFrame:
    """An e-mail that helps one segment (more with tenure), does nothing for a second and hurts a third."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["helps", "neutral", "hurts"], n, p=[0.3, 0.4, 0.3])
    tenure, spend = rng.uniform(0, 10, n), rng.gamma(2, 50, n)
    base = 0.05 + 0.02 * tenure / 10 + 0.0005 * spend.clip(0, 200)
    effect = np.select([segment == "helps", segment == "hurts"], [0.15 + 0.01 * tenure, -0.08], 0.0)
    # Logged history: the big spenders were e-mailed more often, so a naive comparison flatters the e-mail.
    p_email = np.full(n, 0.5) if randomised else 1 / (1 + np.exp(-(spend - 100) / 50))
    arm = np.where(rng.uniform(size=n) < p_email, "email", "none")
    converted = (rng.uniform(size=n) < np.clip(base + effect * (arm == "email"), 0, 1)).astype(int)
    return pd.DataFrame({"segment": segment, "tenure": tenure.round(2), "spend_prev": spend.round(2), "arm": arm,
                         "converted": converted, "true_effect": effect})


def kpi_history(n: int, seed: int) -> pd.DataFrame:
    """Three arms and three KPIs: e-mail helps the young, a call helps the lapsed, any contact annoys the loyal."""
    rng = np.random.default_rng(seed)
    segment = rng.choice(["young", "loyal", "lapsed"], n, p=[0.35, 0.35, 0.3])
    tenure = rng.uniform(0, 10, n)
    arm = rng.choice(["none", "email", "call"], n, p=[0.34, 0.33, 0.33])
    effects = {("young", "email"): 0.12, ("young", "call"): 0.02, ("lapsed", "email"): 0.03, ("lapsed", "call"): 0.15,
               ("loyal", "email"): -0.03, ("loyal", "call"): -0.06}
    effect = np.array([effects.get((s, a), 0.0) for s, a in zip(segment, arm)])
    visit = (rng.uniform(size=n) < np.clip(0.2 + 2 * effect, 0, 1)).astype(int)
    conversion = (rng.uniform(size=n) < np.clip(0.05 + 0.01 * tenure + effect, 0, 1)).astype(int)
    spend = np.where(conversion == 1, rng.gamma(3, 30, n), 0).round(2)
    return pd.DataFrame({"segment": segment, "tenure": tenure.round(2), "arm": arm, "visit": visit,
                         "conversion": conversion, "spend": spend})
