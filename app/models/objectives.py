"""Objectives and KPIs as data, and the uplift models that choose between them per customer.

`objectives.yaml` (or OBJECTIVES_FILE) names the KPIs, the formula that weighs them, the contact cost, the live
holdout share, a contact budget and the objectives with their relevance rules. `outreach train` fits, per KPI,
a LightGBM model of the outcome after a contact (the objective is one of its features) and one of the outcome
with no contact, over the store's logged history, inverse-propensity weighted because past contacts were not
random (`ObjectiveUplift`); scoring then picks, per customer, the relevant objective with the largest predicted
weighted impact net of the contact cost and says why the others lost.

The comparison rows come from the store itself: every past contact is a treated row (its objective is the
product it was about), and moments with no contact within a window on either side are the control rows; each
row's KPIs are measured over the window after it.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import lightgbm as lgb
import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from app.datafile import read_yaml, stamped_version
from app.domain import POSITIVE_OUTCOMES, first_problem
from app.errors import InvalidInput
from app.features.build import DAY, FeatureBuilder, History
from app.features.pointintime import TimeIndex, epoch_seconds
from app.models.uplift import Formula, propensity, regressor

DEFAULT_OBJECTIVES_FILE = Path(__file__).parents[1] / "policy" / "objectives.yaml"
MEASURES = ("positive_outcome", "purchase", "value")
# The plan (channel, slot, product) is chosen elsewhere: the uplift models judge who, not when or how.
PLAN_COLUMNS = ["channel", "product", "hour", "day_of_week", "month", "hour_of_week", "product_views_7d",
                "days_since_product_view"]
CATEGORICAL = ["segment", "industry", "lifecycle_stage"]
MIN_ROWS = 30  # treated rows an objective needs before a model of its effect is fitted


class ObjectivesError(ValueError):
    """An objectives file that cannot be used; the message names the file and the field."""


class KPI(BaseModel):
    model_config = ConfigDict(extra="forbid")
    measure: str
    description: str = ""

    @field_validator("measure")
    @classmethod
    def _known_measure(cls, value: str) -> str:
        if value not in MEASURES and not re.fullmatch(r"event:[a-z_]+", value):
            raise ValueError(f"unknown measure {value!r} (use {', '.join(MEASURES)} or event:TYPE)")
        return value


class Achieved(BaseModel):
    model_config = ConfigDict(extra="forbid")
    event: str = Field(min_length=1)
    product: str | None = None
    within_days: int | None = Field(default=None, ge=1)


class Objective(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9_\-]{1,60}$")
    label: str = Field(min_length=1)
    product: str | None = None
    achieved_when: list[Achieved] = Field(default_factory=list)


class Objectives(BaseModel):
    model_config = ConfigDict(extra="forbid")
    version: str = Field(min_length=1)
    window_days: int = Field(ge=1, le=365)
    kpis: dict[str, KPI] = Field(min_length=1)
    formula: str
    contact_cost: float = Field(ge=0)
    holdout_share: float = Field(ge=0, le=0.5)
    max_contacts: int | None = Field(default=None, ge=1)
    objectives: list[Objective] = Field(min_length=1)

    @model_validator(mode="after")
    def _consistent(self) -> Objectives:
        ids = [o.id for o in self.objectives]
        twice = sorted({i for i in ids if ids.count(i) > 1})
        if twice:
            raise ValueError(f"objectives: id {', '.join(twice)} appears more than once")
        for name in self.kpis:
            if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
                raise ValueError(f"kpis: {name!r} is not a name a formula can use (letters, digits, _)")
        try:
            unknown = sorted(set(Formula(self.formula).columns) - set(self.kpis))
        except InvalidInput as exc:
            raise ValueError(f"formula: {exc}") from None
        if unknown:
            raise ValueError(f"formula: names {', '.join(unknown)}, which are not KPIs ({', '.join(self.kpis)})")
        return self


def load_objectives(path: Path | None = None) -> tuple[Objectives, str]:
    """The objectives and their stamped version (declared version + a hash of the text)."""
    path = path or DEFAULT_OBJECTIVES_FILE
    text, raw = read_yaml(path, ObjectivesError)
    if not isinstance(raw, dict):
        raise ObjectivesError(f"{path}: expected a mapping with version, kpis, formula, objectives")
    try:
        objectives = Objectives.model_validate(raw)
    except ValidationError as exc:
        raise ObjectivesError(f"{path}: {first_problem(exc)}") from None
    return objectives, stamped_version(objectives.version, text)


# -- measuring KPIs --------------------------------------------------------------------------------------------

class KpiMeter:
    """Each KPI of each (customer, moment) over the window after it, from the store's contacts and events."""

    def __init__(self, attempts: pd.DataFrame, events: pd.DataFrame, code: pd.Index, objectives: Objectives) -> None:
        self.objectives = objectives
        a_code, a_time = code.get_indexer(attempts["customer_id"]), epoch_seconds(attempts["attempted_at"])
        e_code, e_time = code.get_indexer(events["customer_id"]), epoch_seconds(events["occurred_at"])
        positive = attempts["outcome"].isin([str(o) for o in POSITIVE_OUTCOMES]).to_numpy() & (a_code >= 0)
        converted = (attempts["outcome"] == "converted").to_numpy() & (a_code >= 0)
        purchase = (events["type"] == "purchase").to_numpy() & (e_code >= 0)
        self._index = {
            "positive_outcome": [TimeIndex(a_code[positive], a_time[positive])],
            "purchase": [TimeIndex(a_code[converted], a_time[converted]), TimeIndex(e_code[purchase], e_time[purchase])],
        }
        for kpi in objectives.kpis.values():
            if kpi.measure.startswith("event:"):
                chosen = (events["type"] == kpi.measure.split(":", 1)[1]).to_numpy() & (e_code >= 0)
                self._index[kpi.measure] = [TimeIndex(e_code[chosen], e_time[chosen])]
        value = pd.to_numeric(attempts["value"], errors="coerce").fillna(0.0).to_numpy() if "value" in attempts \
            else np.zeros(len(attempts))
        self._value = TimeIndex(a_code[converted], a_time[converted], value[converted])

    def measure(self, codes: np.ndarray, start: np.ndarray, until: int | None = None) -> dict[str, np.ndarray]:
        """KPIs over [start, start + window), or up to `until` (epoch seconds) where that comes first: a contact at
        `start` counts for its own row."""
        end = start + self.objectives.window_days * DAY
        if until is not None:
            end = np.minimum(end, until)
        out: dict[str, np.ndarray] = {}
        for name, kpi in self.objectives.kpis.items():
            if kpi.measure == "value":
                out[name] = self._value.sum_between(codes, start, end)
            else:
                hits = sum(index.count_between(codes, start, end) for index in self._index[kpi.measure])
                out[name] = (hits > 0).astype(np.float64)
        return out


def achieved(objectives: Objectives, history: History, builder: FeatureBuilder, codes: np.ndarray,
             now_s: int) -> np.ndarray:
    """(customers x objectives) booleans: the objective is already met (an `achieved_when` event happened)."""
    events = history.events
    e_code, e_time = builder.code.get_indexer(events["customer_id"]), epoch_seconds(events["occurred_at"])
    met = np.zeros((len(codes), len(objectives.objectives)), dtype=bool)
    for j, objective in enumerate(objectives.objectives):
        for rule in objective.achieved_when:
            mask = (events["type"] == rule.event).to_numpy() & (e_code >= 0)
            if rule.product is not None:
                mask &= (events["product"] == rule.product).to_numpy()
            since = now_s - rule.within_days * DAY if rule.within_days else 0
            index = TimeIndex(e_code[mask], e_time[mask])
            met[:, j] |= index.count_between(codes, np.full(len(codes), since), np.full(len(codes), now_s + 1)) > 0
    return met


# -- the uplift models -----------------------------------------------------------------------------------------

def uplift_features(rows: pd.DataFrame, categories: dict[str, list[str]] | None = None) -> pd.DataFrame:
    """Who the customer is and what they did before: the plan columns dropped, categories fixed to training's."""
    out = rows.drop(columns=[c for c in PLAN_COLUMNS if c in rows.columns])
    out = out[[c for c in out.columns if not c.startswith("context_")]]
    for column in out.columns:
        if column in CATEGORICAL or not pd.api.types.is_numeric_dtype(out[column]):
            levels = (categories or {}).get(column) or sorted(out[column].dropna().astype(str).unique())
            text = out[column].astype("string").astype(object)
            out[column] = pd.Categorical(text.where(text.isin(levels), None), categories=levels)
        else:
            out[column] = pd.to_numeric(out[column], errors="coerce").astype(np.float64)
    return out


def _booster(x: pd.DataFrame, y: np.ndarray, weight: np.ndarray, seed: int) -> lgb.Booster:
    """The uplift commands' regressor (`eval uplift`, `eval policy`) with 150 trees, kept as a booster to save
    and load."""
    return regressor(seed).set_params(n_estimators=150).fit(x, y, sample_weight=weight).booster_


@dataclass
class ObjectiveUplift:
    """Per KPI a model of the outcome without contact and one with it: the difference is the predicted impact.

    The contact model reads the objective as a feature, and how recently the customer viewed the objective's
    product (`days_since_viewed_offer`): what makes one offer work better than another is shared across offers,
    so each objective learns from every contact, not only its own (an S-learner across objectives inside a
    T-learner between contact and none)."""

    objectives_version: str
    kpis: list[str]
    features: list[str]
    categories: dict[str, list[str]]
    control: dict[str, lgb.Booster]
    contact: dict[str, lgb.Booster]
    products: dict[str, str | None]  # objective -> its product, for days_since_viewed_offer
    metrics: dict[str, Any]

    def impacts(self, rows: pd.DataFrame) -> dict[str, dict[str, np.ndarray]]:
        """objective -> KPI -> predicted change per row, for every objective the models know."""
        x = self.features_of(rows)  # a product unseen here: NaN
        base = {k: self.control[k].predict(x) for k in self.kpis}
        return {objective: {k: self.contact[k].predict(offer_features(rows, x, objective, product, list(self.products)))
                            - base[k] for k in self.kpis}
                for objective, product in self.products.items()}

    def features_of(self, rows: pd.DataFrame) -> pd.DataFrame:
        return uplift_features(rows.reindex(columns=self.features), self.categories)

    def offer_contributions(self, rows: pd.DataFrame, x: pd.DataFrame, objective: str, kpi: str) -> pd.DataFrame:
        """TreeSHAP contributions of each feature to the predicted KPI after a contact about `objective`
        (`x`: the rows' `features_of`)."""
        offer = offer_features(rows, x, objective, self.products[objective], list(self.products))
        values = self.contact[kpi].predict(offer, pred_contrib=True)
        return pd.DataFrame(values[:, :-1], columns=offer.columns, index=rows.index)

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        models = {f"control.{k}": m for k, m in self.control.items()} | {f"contact.{k}": m for k, m in self.contact.items()}
        (folder / "models.json").write_text(json.dumps({name: m.model_to_string() for name, m in models.items()}))
        (folder / "schema.json").write_text(json.dumps(
            {"objectives_version": self.objectives_version, "kpis": self.kpis, "features": self.features,
             "categories": self.categories, "products": self.products, "metrics": self.metrics}, indent=2))

    @classmethod
    def load(cls, folder: Path) -> ObjectiveUplift | None:
        if not (folder / "schema.json").exists():
            return None  # a bundle trained before objectives existed: scoring keeps the preferred product
        schema = json.loads((folder / "schema.json").read_text())
        text = json.loads((folder / "models.json").read_text())
        booster = lambda name: lgb.Booster(model_str=text[name])  # noqa: E731
        return cls(schema["objectives_version"], schema["kpis"], schema["features"], schema["categories"],
                   {k: booster(f"control.{k}") for k in schema["kpis"]},
                   {k: booster(f"contact.{k}") for k in schema["kpis"]}, schema["products"], schema.get("metrics", {}))


def offer_features(rows: pd.DataFrame, x: pd.DataFrame, objective: str | np.ndarray, product: str | None | np.ndarray,
                   objectives: list[str]) -> pd.DataFrame:
    """The customer's features plus the offer: which objective, and days since its product was viewed."""
    n = len(x)
    objective = np.broadcast_to(np.asarray(objective, dtype=object), (n,))
    product = np.broadcast_to(np.asarray(product, dtype=object), (n,))
    viewed = np.full(n, np.nan)
    for name in pd.unique(product[pd.notna(product)]):
        column = f"days_since_viewed_{name}"
        if column in rows.columns:
            mine = product == name
            viewed[mine] = pd.to_numeric(rows[column], errors="coerce").to_numpy()[mine]
    return x.assign(objective=pd.Categorical(objective, categories=objectives), days_since_viewed_offer=viewed)


def customer_rows(builder: FeatureBuilder, customer_ids: pd.Series, at: pd.Series) -> pd.DataFrame:
    """What the uplift models read about each (customer, moment): profile, behaviour, intents, contact history
    and how recently each product was viewed; no plan."""
    none = pd.Series([None] * len(customer_ids), dtype=object, index=customer_ids.index)
    return pd.concat([builder.rows(customer_ids, at, none, none), builder.product_interest(customer_ids, at)], axis=1)


def comparison_rows(history: History, builder: FeatureBuilder, objectives: Objectives, seed: int
                    ) -> tuple[pd.DataFrame, np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """Treated rows (past contacts, the objective their product names) and control rows (moments with no
    contact within the window on either side), each with its KPIs over the window after it. Rows whose
    window is not over yet are left out: their outcome is not known."""
    window = objectives.window_days * DAY
    attempts = history.attempts
    a_code, a_time = builder.code.get_indexer(attempts["customer_id"]), epoch_seconds(attempts["attempted_at"])
    times = np.concatenate([a_time, epoch_seconds(history.events["occurred_at"])])
    if not len(a_time):
        raise ObjectivesError("the store has no contacts to learn the objectives' effects from")
    first, last = int(times.min()), int(times.max())
    by_product = {o.product: o.id for o in reversed(objectives.objectives) if o.product}
    objective = attempts["product"].map(by_product).to_numpy(dtype=object)
    keep = (a_code >= 0) & (a_time + window <= last) & pd.notna(objective)
    rng = np.random.default_rng(seed)
    contacts = TimeIndex(a_code[a_code >= 0], a_time[a_code >= 0])
    n = len(builder.code)
    draws = max(2 * int(keep.sum()), 2 * n)
    c_code = rng.integers(0, n, draws)
    c_time = rng.integers(first + window, max(first + window + 1, last - window), draws)
    quiet = contacts.count_between(c_code, c_time - window, c_time + window) == 0
    wanted = max(int(keep.sum()), MIN_ROWS)  # as many control rows as treated ones
    c_code, c_time = c_code[quiet][:wanted], c_time[quiet][:wanted]
    codes = np.concatenate([a_code[keep], c_code])
    start = np.concatenate([a_time[keep], c_time])
    arm = np.concatenate([objective[keep], np.full(len(c_code), None, dtype=object)])
    rows = customer_rows(builder, pd.Series(builder.code[codes]), pd.Series(pd.to_datetime(start, unit="s", utc=True)))
    return rows, codes, arm, KpiMeter(attempts, history.events, builder.code, objectives).measure(codes, start)


def train_objective_uplift(history: History, objectives: Objectives, version: str, seed: int = 0
                           ) -> ObjectiveUplift:
    """Fit the models; report, per objective, the observed weighted mean effect on the comparison rows so a
    registry reader sees what the models were fitted to."""
    builder = FeatureBuilder(history)
    rows, _, arm, kpis = comparison_rows(history, builder, objectives, seed)
    x = uplift_features(rows)
    categories = {c: list(x[c].cat.categories) for c in x.columns if isinstance(x[c].dtype, pd.CategoricalDtype)}
    treated = pd.notna(arm)
    counts = {o.id: int((arm == o.id).sum()) for o in objectives.objectives}
    known = {o.id: o.product for o in objectives.objectives if counts[o.id] >= MIN_ROWS}
    if not known:
        raise ObjectivesError(f"no objective has {MIN_ROWS} past contacts to learn its effect from")
    # Past contacts went to some customers more than others: weigh each row by the inverse of its estimated
    # chance of being in the arm it is in, so the comparison is between like customers.
    _, g = propensity(x, treated, seed)
    weight = np.where(treated, 1 / g, 1 / (1 - g))
    contacted = treated & np.isin(arm, list(known))
    offer = offer_features(rows[contacted], x[contacted], arm[contacted],
                           np.array([known[a] for a in arm[contacted]], dtype=object), list(known))
    control = {k: _booster(x[~treated], v[~treated], weight[~treated], seed) for k, v in kpis.items()}
    contact = {k: _booster(offer, v[contacted], weight[contacted], seed) for k, v in kpis.items()}
    metrics: dict[str, Any] = {"rows_treated": int(treated.sum()), "rows_control": int((~treated).sum()),
                               "control_mean": {k: float(v[~treated].mean()) for k, v in kpis.items()}, "by_objective": {}}
    for objective_id, rows_of in counts.items():
        mine = arm == objective_id
        if objective_id not in known:
            metrics["by_objective"][objective_id] = {"rows": rows_of, "skipped": f"fewer than {MIN_ROWS} contacts"}
            continue
        metrics["by_objective"][objective_id] = {"rows": rows_of, "observed_effect": {
            k: float(np.average(v[mine], weights=weight[mine]) - np.average(v[~treated], weights=weight[~treated]))
            for k, v in kpis.items()}}
    return ObjectiveUplift(version, list(objectives.kpis), list(x.columns), categories, control, contact, known, metrics)


# -- choosing ------------------------------------------------------------------------------------------------

def choose(objectives: Objectives, uplift: ObjectiveUplift, rows: pd.DataFrame, met: np.ndarray
           ) -> list[dict[str, Any] | None]:
    """Per row, the relevant objective with the largest weighted impact, its impact on each KPI, its value
    net of the contact cost and why the alternatives lost; None when no objective is relevant."""
    impacts = uplift.impacts(rows)
    ids = [o.id for o in objectives.objectives]
    label = {o.id: o.label for o in objectives.objectives}
    n = len(rows)
    formula = Formula(objectives.formula)
    zero = {k: np.zeros(n) for k in objectives.kpis}
    nothing = formula.value(zero, n)
    value = np.full((n, len(ids)), -np.inf)
    # What each KPI's predicted change is worth on its own, in the formula's units (exact for a linear formula):
    # the alternatives' "why" names the KPI where they fall furthest behind.
    worth: dict[str, dict[str, np.ndarray]] = {}
    for j, objective_id in enumerate(ids):
        if objective_id not in impacts:
            continue
        change = {k: impacts[objective_id].get(k, np.zeros(n)) for k in objectives.kpis}
        value[:, j] = np.where(met[:, j], -np.inf, formula.value(change, n) - nothing - objectives.contact_cost)
        worth[objective_id] = {k: formula.value({**zero, k: change[k]}, n) - nothing for k in objectives.kpis}
    choices: list[dict[str, Any] | None] = []
    for i in range(n):
        order = [j for j in np.argsort(-value[i], kind="stable") if np.isfinite(value[i, j])]
        if not order:
            choices.append(None)
            continue
        best = ids[order[0]]
        alternatives = []
        for j in order[1:]:
            other = ids[j]
            behind = max(objectives.kpis, key=lambda k: worth[best][k][i] - worth[other][k][i])
            alternatives.append({
                "objective": other, "value": round(float(value[i, j]), 4), "kpi": behind,
                "why": f"{label[other]}: predicted {behind} change "
                       f"{float(impacts[other][behind][i]):+.3f}, against {float(impacts[best][behind][i]):+.3f} "
                       "for the chosen objective"})
        alternatives += [{"objective": ids[j], "value": None, "why": f"{label[ids[j]]}: already achieved"}
                         for j in range(len(ids)) if met[i, j]]
        choices.append({"objective": best, "label": label[best],
                        "kpis": {k: round(float(impacts[best][k][i]), 4) for k in objectives.kpis},
                        "value": round(float(value[i, order[0]]), 4), "contact_cost": objectives.contact_cost,
                        "alternatives": alternatives})
    return choices


def explain_runner_up(uplift: ObjectiveUplift, rows: pd.DataFrame,
                      choices: list[dict[str, Any] | None], describe: Any) -> None:
    """Name the customer fact behind the runner-up's loss: the feature whose TreeSHAP contribution to the KPI
    it falls furthest behind on differs most between the two offers (the offer's identity itself left out).
    `describe(feature, row as a dict, best, other)` turns it into words. Only the runner-up: the contributions cost
    two TreeSHAP passes per customer."""
    groups: dict[tuple[str, str, str], list[int]] = {}
    for i, choice in enumerate(choices):
        runner_up = choice["alternatives"][0] if choice and choice["alternatives"] else None
        if runner_up and runner_up["value"] is not None and runner_up["objective"] in uplift.products:
            groups.setdefault((choice["objective"], runner_up["objective"], runner_up["kpi"]), []).append(i)
    x = uplift.features_of(rows)  # once: preparing the categories costs more than a small group's TreeSHAP
    for (best, other, kpi), members in groups.items():
        part, part_x = rows.iloc[members], x.iloc[members]
        gap = (uplift.offer_contributions(part, part_x, best, kpi) - uplift.offer_contributions(part, part_x, other, kpi))
        gap = gap.drop(columns="objective")
        for i, record, feature in zip(members, part.to_dict("records"), gap.abs().idxmax(axis=1)):
            fact = describe(feature, record, best, other)
            if fact:
                runner_up = choices[i]["alternatives"][0]
                runner_up["because"] = feature
                runner_up["why"] = f"{runner_up['why']}; what separates them most: {fact}"


# -- what contact really changed -------------------------------------------------------------------------------

class RealisedUplift(BaseModel):
    """Per objective, the KPIs of the customers it was chosen for and contacted against those held out, over the
    window after each decision; `interim` when the windows are still open and only their first `days_observed`
    (on average) could be measured."""

    objective: str
    contacted: int
    held_out: int
    kpis: dict[str, dict[str, float | None]]  # kpi -> contacted mean, held-out mean, difference
    value_difference: float | None
    ci95: tuple[float, float] | None
    days_observed: float
    interim: bool = False


class RealisedUpliftTables(BaseModel):
    """What contact really changed, from the live holdout: decisions whose window is over, and those whose window
    is still open measured so far."""

    closed: list[RealisedUplift] = []
    so_far: list[RealisedUplift] = []


def realised_uplift(*, session: Any, objectives: Objectives, now: Any) -> RealisedUpliftTables:
    """From the live holdout: decisions of batch runs with an objective, recommended (intent to treat) or held out.
    `closed`: decisions whose window is over. `so_far`: those whose window is still open (and at least a day old),
    measured up to `now`; the comparison is fair because both arms of a run share its moment, and so the days
    observed; it shows a direction early, and moves until the windows close. One read of the store serves both
    (the metrics page read the customers' contacts and events twice, over overlapping ranges)."""
    from sqlalchemy import select

    from app.data.tables import Event, OutreachAttempt
    from app.models.tables import Decision, ScoreRun

    moment = pd.Timestamp(now)
    decided = pd.DataFrame(session.execute(
        select(Decision.customer_id, Decision.as_of, Decision.objective, Decision.status)
        .join(ScoreRun, ScoreRun.id == Decision.run_id)
        .where(ScoreRun.kind == "batch", Decision.objective.is_not(None), Decision.status.in_(("recommended", "holdout")),
               Decision.as_of <= (moment - pd.Timedelta(days=1)).to_pydatetime())).all(),
        columns=["customer_id", "as_of", "objective", "status"])
    if decided.empty:
        return RealisedUpliftTables()
    customers = sorted(set(decided["customer_id"]))
    # Only what falls inside some window counts: reading the customers' whole history took 2.2 s of the metrics page
    # on the demo's store once its 20,000-customer run was a window old, 0.6 s with the time bounds (same figures).
    first = pd.Timestamp(decided["as_of"].min()).to_pydatetime()
    last = (pd.Timestamp(decided["as_of"].max()) + pd.Timedelta(days=objectives.window_days)).to_pydatetime()
    attempts = pd.DataFrame(session.execute(
        select(OutreachAttempt.customer_id, OutreachAttempt.attempted_at, OutreachAttempt.outcome, OutreachAttempt.value)
        .where(OutreachAttempt.customer_id.in_(customers), OutreachAttempt.attempted_at >= first,
               OutreachAttempt.attempted_at < last)).all(), columns=["customer_id", "attempted_at", "outcome", "value"])
    events = pd.DataFrame(session.execute(
        select(Event.customer_id, Event.occurred_at, Event.type).where(
            Event.customer_id.in_(customers), Event.occurred_at >= first, Event.occurred_at < last)).all(),
        columns=["customer_id", "occurred_at", "type"])
    code = pd.Index(customers)
    meter = KpiMeter(attempts, events, code, objectives)
    start = epoch_seconds(decided["as_of"])
    now_s = int(epoch_seconds(pd.Series([moment]))[0])
    # Measured up to now: a closed window whole, an open one as far as it has come.
    kpis = meter.measure(code.get_indexer(decided["customer_id"]), start, now_s)
    observed = np.minimum((now_s - start) / DAY, float(objectives.window_days))
    is_open = observed < objectives.window_days
    value = Formula(objectives.formula).value(kpis, len(decided))

    def table(rows_of_kind: np.ndarray, interim: bool) -> list[RealisedUplift]:
        out = []
        for objective, group in decided[rows_of_kind].groupby("objective"):
            treated = (group["status"] == "recommended").to_numpy()
            rows = group.index.to_numpy()
            t, c = rows[treated], rows[~treated]
            mean = lambda values, rows_: float(values[rows_].mean()) if len(rows_) else None  # noqa: E731
            per_kpi = {k: {"contacted": mean(v, t), "held_out": mean(v, c),
                           "difference": mean(v, t) - mean(v, c) if len(t) and len(c) else None} for k, v in kpis.items()}
            difference = ci = None
            if len(t) > 1 and len(c) > 1:
                difference = float(value[t].mean() - value[c].mean())
                se = float(np.sqrt(value[t].var(ddof=1) / len(t) + value[c].var(ddof=1) / len(c)))
                ci = (difference - 1.96 * se, difference + 1.96 * se)
            out.append(RealisedUplift(objective=str(objective), contacted=len(t), held_out=len(c), kpis=per_kpi,
                                      value_difference=difference, ci95=ci,
                                      days_observed=round(float(observed[rows].mean()), 1), interim=interim))
        return out

    return RealisedUpliftTables(closed=table(~is_open, False), so_far=table(is_open, True))
