"""Uplift: the difference contact makes, per customer, and the policy that contacts by it.

`outreach eval uplift` and `outreach eval policy` run this on any pair of CSV files (bring your own data):
- meta-learners on LightGBM: S (one model, the treatment as a feature), T (one model per arm) and X (T's
  models, then a model of each arm's imputed effects, mixed by the propensity); with logged (not randomised)
  history each row is weighted by the inverse of its estimated propensity, so a channel that was given to
  the likeliest buyers does not look better than it is;
- the model is chosen on the training file alone (3-fold cross-validated Qini), never on the test file;
- the metrics: uplift at 30 % (treated minus control response among the 30 % ranked highest) and the Qini
  area (the area between the Qini curve and the random line, the curve counting incremental outcomes over
  rows ranked by predicted uplift, divided by the number of test rows);
- the policy: per row, the treatment with the largest predicted impact on a KPI formula net of a contact
  cost, nobody contacted below the cost, a budget spent on the largest impacts; valued by inverse-propensity
  weighting on the test rows beside sending everyone the single best treatment and a propensity ranking.

Every problem with the input is an `InvalidInput` naming the file and the column or value; nothing is
written until everything has been computed.
"""

from __future__ import annotations

import ast
import math
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from app.errors import InvalidInput

MIN_ROWS_PER_ARM = 50
PROPENSITY_CLIP = 0.02
LEARNERS = ("s", "t", "x")
TRUE_WORDS = {"1", "yes", "true", "y", "t"}
FALSE_WORDS = {"0", "no", "false", "n", "f"}


# -- reading -------------------------------------------------------------------------------------------------

def read_csv(path: Path, option: str) -> pd.DataFrame:
    if not path.is_file():
        raise InvalidInput(f"{path}: no such file", field=option)
    try:
        with path.open(encoding="utf-8", errors="replace") as handle:
            header = handle.readline()
        # The separator the header uses most: comma, semicolon (Bank Marketing), tab or pipe.
        separator = max((",", ";", "\t", "|"), key=header.count)
        frame = pd.read_csv(path, sep=separator)
    except (ValueError, OSError, pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise InvalidInput(f"{path}: cannot be read as CSV ({exc})", field=option) from None
    if frame.empty:
        raise InvalidInput(f"{path}: has no rows", field=option)
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def same_columns(train: pd.DataFrame, test: pd.DataFrame, test_path: Path) -> None:
    missing, extra = set(train.columns) - set(test.columns), set(test.columns) - set(train.columns)
    if missing or extra:
        parts = ([f"missing {', '.join(sorted(missing))}"] if missing else []) + \
                ([f"not in the training file: {', '.join(sorted(extra))}"] if extra else [])
        raise InvalidInput(f"{test_path}: the test file's columns differ from the training file's ({'; '.join(parts)})",
                           field="--test")


def need_column(frame: pd.DataFrame, column: str, path: Path, option: str) -> None:
    if column not in frame.columns:
        raise InvalidInput(f"{path}: no column {column!r} (columns: {', '.join(frame.columns)})", field=option)


def arm_values(frame: pd.DataFrame, column: str) -> pd.Series:
    return frame[column].astype(str).str.strip()


def numeric_outcome(values: pd.Series, name: str, path: Path, option: str) -> np.ndarray:
    """A number per row; a two-valued yes/no or true/false column counts as 1/0."""
    if values.isna().any():
        raise InvalidInput(f"{path}: column {name!r} has {int(values.isna().sum())} empty values", field=option)
    if pd.api.types.is_bool_dtype(values) or pd.api.types.is_numeric_dtype(values):
        return values.astype(float).to_numpy()
    words = values.astype(str).str.strip().str.lower()
    if set(words) <= TRUE_WORDS | FALSE_WORDS:
        return words.isin(TRUE_WORDS).astype(float).to_numpy()
    raise InvalidInput(f"{path}: column {name!r} must be numeric or yes/no (found {', '.join(sorted(set(words))[:5])})",
                       field=option)


def features_of(train: pd.DataFrame, test: pd.DataFrame, leave_out: list[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The same feature columns on both files; text columns become categories with the training file's levels."""
    train_x, test_x = train.drop(columns=leave_out), test.drop(columns=leave_out)
    for column in train_x.columns:
        if not (pd.api.types.is_numeric_dtype(train_x[column]) and pd.api.types.is_numeric_dtype(test_x[column])):
            levels = sorted(train_x[column].astype(str).unique())
            train_x[column] = pd.Categorical(train_x[column].astype(str), categories=levels)
            test_x[column] = pd.Categorical(test_x[column].astype(str), categories=levels)
    return train_x, test_x


def check_arm(values: pd.Series, value: str, path: Path, column: str, option: str) -> None:
    count = int((values == value).sum())
    if count == 0:
        raise InvalidInput(f"{path}: column {column!r} never equals {value!r} "
                           f"(values: {', '.join(sorted(values.unique())[:10])})", field=option)
    if count < MIN_ROWS_PER_ARM:
        raise InvalidInput(f"{path}: only {count} rows with {column} = {value!r}; "
                           f"at least {MIN_ROWS_PER_ARM} per arm are needed", field=option)


def check_writable(path: Path, option: str) -> None:
    if not path.parent.is_dir():
        raise InvalidInput(f"{path}: the folder {path.parent} does not exist", field=option)
    if path.is_dir():
        raise InvalidInput(f"{path}: is a folder, not a file", field=option)


def write_atomically(frame: pd.DataFrame, path: Path, option: str) -> None:
    """The whole file or nothing: written beside the target and renamed over it."""
    check_writable(path, option)
    handle, temporary = tempfile.mkstemp(dir=path.parent or Path("."), suffix=".part")
    os.close(handle)
    try:
        frame.to_csv(temporary, index=False)
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)


# -- models --------------------------------------------------------------------------------------------------

def regressor(seed: int) -> Any:
    from lightgbm import LGBMRegressor

    return LGBMRegressor(n_estimators=200, learning_rate=0.05, num_leaves=15, min_child_samples=40,
                         subsample=0.8, subsample_freq=1, colsample_bytree=0.8, reg_lambda=1.0,
                         random_state=seed, verbose=-1)


def propensity(x: pd.DataFrame, treated: np.ndarray, seed: int) -> tuple[Any, np.ndarray]:
    """P(treated | x), deliberately coarse (a propensity that separates perfectly leaves nothing to compare)."""
    from lightgbm import LGBMClassifier

    model = LGBMClassifier(n_estimators=100, learning_rate=0.05, num_leaves=7, min_child_samples=100,
                           random_state=seed, verbose=-1)
    model.fit(x, treated.astype(int))
    return model, np.clip(model.predict_proba(x)[:, 1], PROPENSITY_CLIP, 1 - PROPENSITY_CLIP)


@dataclass
class UpliftModel:
    """A fitted meta-learner: `predict(x)` is the predicted change in the outcome if treated, per row."""

    kind: str
    parts: dict[str, Any]

    def predict(self, x: pd.DataFrame) -> np.ndarray:
        p = self.parts
        if self.kind == "s":
            return p["m"].predict(_with_arm(x, 1)) - p["m"].predict(_with_arm(x, 0))
        if self.kind == "t":
            return p["m1"].predict(x) - p["m0"].predict(x)
        g = np.clip(p["g"].predict_proba(x)[:, 1], PROPENSITY_CLIP, 1 - PROPENSITY_CLIP)
        return g * p["tau0"].predict(x) + (1 - g) * p["tau1"].predict(x)


def _with_arm(x: pd.DataFrame, arm: int) -> pd.DataFrame:
    return x.assign(__treated__=arm)


def fit_uplift(kind: str, x: pd.DataFrame, treated: np.ndarray, y: np.ndarray, seed: int = 0) -> UpliftModel:
    g_model, g = propensity(x, treated, seed)
    weight = np.where(treated, 1 / g, 1 / (1 - g))  # inverse propensity: logged history compares like with like
    t, c = treated.astype(bool), ~treated.astype(bool)
    if kind == "s":
        m = regressor(seed).fit(_with_arm(x, treated.astype(int)), y, sample_weight=weight)
        return UpliftModel("s", {"m": m})
    m1 = regressor(seed).fit(x[t], y[t], sample_weight=weight[t])
    m0 = regressor(seed).fit(x[c], y[c], sample_weight=weight[c])
    if kind == "t":
        return UpliftModel("t", {"m1": m1, "m0": m0})
    # X-learner: each arm's effect imputed with the other arm's model, then modelled and mixed by propensity.
    tau1 = regressor(seed).fit(x[t], y[t] - m0.predict(x[t]))
    tau0 = regressor(seed).fit(x[c], m1.predict(x[c]) - y[c])
    return UpliftModel("x", {"tau1": tau1, "tau0": tau0, "g": g_model})


def choose_learner(x: pd.DataFrame, treated: np.ndarray, y: np.ndarray, seed: int = 0) -> tuple[str, dict[str, float]]:
    """The learner with the best 3-fold cross-validated Qini on the training file."""
    from sklearn.model_selection import StratifiedKFold

    strata = treated.astype(int) * 2 + (y > np.median(y)).astype(int)
    scores: dict[str, list[float]] = {k: [] for k in LEARNERS}
    for train_rows, held_rows in StratifiedKFold(3, shuffle=True, random_state=seed).split(x, strata):
        for kind in LEARNERS:
            model = fit_uplift(kind, x.iloc[train_rows], treated[train_rows], y[train_rows], seed)
            scores[kind].append(qini(model.predict(x.iloc[held_rows]), treated[held_rows], y[held_rows]))
    means = {k: float(np.mean(v)) for k, v in scores.items()}
    return max(means, key=lambda k: means[k]), means


# -- metrics -------------------------------------------------------------------------------------------------

def uplift_at(score: np.ndarray, treated: np.ndarray, y: np.ndarray, share: float = 0.3) -> float | None:
    """Mean outcome of the treated minus that of the controls among the `share` ranked highest."""
    top = np.argsort(-score, kind="stable")[: max(1, math.ceil(share * len(score)))]
    t, c = treated[top].astype(bool), ~treated[top].astype(bool)
    if not t.any() or not c.any():
        return None
    return float(y[top][t].mean() - y[top][c].mean())


def qini_curve(score: np.ndarray, treated: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Incremental outcomes among the k rows ranked highest, k = 0..n: treated outcomes minus control
    outcomes scaled to the number of treated rows so far."""
    order = np.argsort(-score, kind="stable")
    t = treated[order].astype(bool)
    y_t, y_c = np.cumsum(np.where(t, y[order], 0.0)), np.cumsum(np.where(~t, y[order], 0.0))
    n_t, n_c = np.cumsum(t), np.cumsum(~t)
    with np.errstate(divide="ignore", invalid="ignore"):
        curve = y_t - np.where(n_c > 0, y_c * n_t / n_c, 0.0)
    return np.concatenate([[0.0], curve])


def qini(score: np.ndarray, treated: np.ndarray, y: np.ndarray) -> float:
    """The area between the Qini curve and the random line (x in rows), divided by the number of rows."""
    curve = qini_curve(score, treated, y)
    n = len(curve) - 1
    random_line = np.linspace(0.0, curve[-1], n + 1)
    return float(np.trapezoid(curve - random_line) / n)


# -- eval uplift ---------------------------------------------------------------------------------------------

def evaluate_uplift(train_path: Path, test_path: Path, *, treatment_col: str, treatment: str, control: str,
                    outcome: str, drop: list[str], scores_out: Path, model: str = "auto", seed: int = 0
                    ) -> dict[str, Any]:
    if model not in ("auto", *LEARNERS):
        raise InvalidInput(f"--model must be auto, s, t or x, got {model!r}", field="--model")
    check_writable(scores_out, "--scores-out")
    train, test = read_csv(train_path, "--train"), read_csv(test_path, "--test")
    same_columns(train, test, test_path)
    need_column(train, treatment_col, train_path, "--treatment-col")
    need_column(train, outcome, train_path, "--outcome")
    for column in drop:
        need_column(train, column, train_path, "--drop")
    if treatment == control:
        raise InvalidInput("--treatment and --control must differ", field="--control")
    arms = arm_values(train, treatment_col)
    check_arm(arms, treatment, train_path, treatment_col, "--treatment")
    check_arm(arms, control, train_path, treatment_col, "--control")
    test_arms = arm_values(test, treatment_col)
    check_arm(test_arms, treatment, test_path, treatment_col, "--treatment")
    check_arm(test_arms, control, test_path, treatment_col, "--control")

    in_train = arms.isin([treatment, control]).to_numpy()
    train = train[in_train].reset_index(drop=True)
    y_train = numeric_outcome(train[outcome], outcome, train_path, "--outcome")
    y_test = numeric_outcome(test[outcome], outcome, test_path, "--outcome")
    leave_out = [treatment_col, outcome, *[c for c in drop if c not in (treatment_col, outcome)]]
    x_train, x_test = features_of(train, test, leave_out)
    t_train = (arm_values(train, treatment_col) == treatment).to_numpy()

    cv_qini: dict[str, float] = {}
    kind = model
    if model == "auto":
        kind, cv_qini = choose_learner(x_train, t_train, y_train, seed)
    fitted = fit_uplift(kind, x_train, t_train, y_train, seed)
    scores = fitted.predict(x_test)

    in_test = test_arms.isin([treatment, control]).to_numpy()
    t_test = (test_arms == treatment).to_numpy()
    result = {
        "uplift_at_30": uplift_at(scores[in_test], t_test[in_test], y_test[in_test], 0.3),
        "qini": qini(scores[in_test], t_test[in_test], y_test[in_test]),
        "n_train": int(len(train)), "n_test": int(len(test)), "n_test_scored_in_arms": int(in_test.sum()),
        "model": {"s": "S-learner", "t": "T-learner", "x": "X-learner"}[kind] + " (LightGBM, inverse-propensity weighted)",
        "cv_qini_by_learner": cv_qini,
        "treated_share_train": float(t_train.mean()),
        "observed_uplift_test": float(y_test[in_test & t_test].mean() - y_test[in_test & ~t_test].mean()),
        "scores_out": str(scores_out),
    }
    write_atomically(test.assign(uplift=scores), scores_out, "--scores-out")
    return result


# -- eval policy ---------------------------------------------------------------------------------------------

class Formula:
    """A KPI formula such as `visit + 10*conversion + 0.05*spend`: numbers, column names, + - * / and brackets."""

    def __init__(self, text: str) -> None:
        self.text = text
        try:
            self.tree = ast.parse(text.strip(), mode="eval").body
        except SyntaxError:
            raise InvalidInput(f"--objective {text!r} is not a formula (use columns, numbers, + - * / and brackets)",
                               field="--objective") from None
        self.columns: list[str] = []
        self._check(self.tree)

    def _check(self, node: ast.AST) -> None:
        if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub, ast.Mult, ast.Div)):
            self._check(node.left)
            self._check(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
            self._check(node.operand)
        elif isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
            pass
        elif isinstance(node, ast.Name):
            self.columns.append(node.id)
        else:
            raise InvalidInput(f"--objective {self.text!r}: only columns, numbers, + - * / and brackets are allowed",
                               field="--objective")

    def value(self, columns: dict[str, np.ndarray], rows: int) -> np.ndarray:
        def walk(node: ast.AST) -> Any:
            if isinstance(node, ast.BinOp):
                left, right = walk(node.left), walk(node.right)
                if isinstance(node.op, ast.Add):
                    return left + right
                if isinstance(node.op, ast.Sub):
                    return left - right
                if isinstance(node.op, ast.Mult):
                    return left * right
                with np.errstate(divide="ignore", invalid="ignore"):
                    return np.nan_to_num(np.divide(left, right))
            if isinstance(node, ast.UnaryOp):
                return -walk(node.operand) if isinstance(node.op, ast.USub) else walk(node.operand)
            if isinstance(node, ast.Constant):
                return float(node.value)
            return columns[node.id]  # type: ignore[attr-defined]

        return np.broadcast_to(np.asarray(walk(self.tree), dtype=float), (rows,)).copy()


def ipw_value(chosen: np.ndarray, arms: np.ndarray, value: np.ndarray, p_arm: np.ndarray) -> float | None:
    """The mean value per row had every row received `chosen`, from the rows that did (self-normalised
    inverse propensity weighting)."""
    weight = np.where(chosen == arms, 1.0 / p_arm, 0.0)
    if weight.sum() == 0:
        return None  # no test row received what the policy chooses: nothing to value it by
    return float((weight * value).sum() / weight.sum())


def evaluate_policy(train_path: Path, test_path: Path, *, treatment_col: str, control: str, objective: str,
                    choices_out: Path, budget: float | None = None, contact_cost: float = 0.0,
                    drop: list[str] | None = None, model: str = "t", seed: int = 0) -> dict[str, Any]:
    if model not in LEARNERS:
        raise InvalidInput(f"--model must be s, t or x, got {model!r}", field="--model")
    if budget is not None and not 0 < budget <= 1:
        raise InvalidInput(f"--budget is a share of the test rows between 0 and 1, got {budget}", field="--budget")
    if contact_cost < 0:
        raise InvalidInput(f"--contact-cost cannot be negative, got {contact_cost}", field="--contact-cost")
    check_writable(choices_out, "--choices-out")
    formula = Formula(objective)
    train, test = read_csv(train_path, "--train"), read_csv(test_path, "--test")
    same_columns(train, test, test_path)
    need_column(train, treatment_col, train_path, "--treatment-col")
    for column in formula.columns:
        if column not in train.columns:
            raise InvalidInput(f"--objective names {column!r}, which is not a column of {train_path} "
                               f"(columns: {', '.join(train.columns)})", field="--objective")
    for column in drop or []:
        need_column(train, column, train_path, "--drop")
    arms = arm_values(train, treatment_col)
    check_arm(arms, control, train_path, treatment_col, "--control")
    treatments = sorted(set(arms) - {control})
    if not treatments:
        raise InvalidInput(f"{train_path}: column {treatment_col!r} has no value other than the control", field="--treatment-col")
    for value in treatments:
        check_arm(arms, value, train_path, treatment_col, "--treatment-col")

    def kpis(frame: pd.DataFrame, path: Path) -> np.ndarray:
        return formula.value({c: numeric_outcome(frame[c], c, path, "--objective") for c in formula.columns}, len(frame))

    v_train, v_test = kpis(train, train_path), kpis(test, test_path)
    leave_out = [treatment_col, *formula.columns, *[c for c in (drop or []) if c not in formula.columns]]
    x_train, x_test = features_of(train, test, leave_out)
    arms_train, arms_test = arms.to_numpy(), arm_values(test, treatment_col).to_numpy()

    # Predicted impact of each treatment against no contact, per test row, net of the contact cost.
    impact = np.column_stack([
        fit_uplift(model, x_train[(arms_train == a) | (arms_train == control)],
                   arms_train[(arms_train == a) | (arms_train == control)] == a,
                   v_train[(arms_train == a) | (arms_train == control)], seed).predict(x_test) - contact_cost
        for a in treatments])
    best = impact.argmax(axis=1)
    best_impact = impact[np.arange(len(test)), best]
    contact = best_impact > 0
    limit = len(test) if budget is None else int(math.floor(budget * len(test)))
    if contact.sum() > limit:
        keep = np.argsort(-np.where(contact, best_impact, -np.inf), kind="stable")[:limit]
        contact = np.zeros(len(test), dtype=bool)
        contact[keep] = True
    choice = np.where(contact, np.array(treatments, dtype=object)[best], control)

    # How each row's arm was assigned, to value any policy from the rows whose arm matches it.
    from lightgbm import LGBMClassifier

    all_arms = [control, *treatments]
    assign = LGBMClassifier(n_estimators=100, learning_rate=0.05, num_leaves=7, min_child_samples=100,
                            random_state=seed, verbose=-1).fit(x_train, arms_train)
    p = assign.predict_proba(x_test)
    column_of = {str(a): i for i, a in enumerate(assign.classes_)}
    known = np.isin(arms_test, all_arms)
    p_arm = np.full(len(test), 1.0)
    p_arm[known] = np.clip(p[np.flatnonzero(known), [column_of[a] for a in arms_test[known]]], PROPENSITY_CLIP, 1)
    cost = lambda chosen: np.where(chosen != control, contact_cost, 0.0)  # noqa: E731

    def value_of(chosen: np.ndarray) -> float | None:
        return ipw_value(np.where(known, chosen, "__none__"), np.where(known, arms_test, "__other__"),
                         v_test - cost(chosen), p_arm)

    # Baselines: everyone gets the treatment that did best on the training file; and a propensity ranking
    # (the rows most likely to score high under that treatment) contacted up to the same number of rows.
    train_means = {a: v_train[arms_train == a].mean() for a in treatments}
    single = max(train_means, key=lambda a: train_means[a])
    response = regressor(seed).fit(x_train[arms_train == single], v_train[arms_train == single])
    ranked = np.argsort(-response.predict(x_test), kind="stable")[: int(contact.sum()) if budget is None else limit]
    by_propensity = np.full(len(test), control, dtype=object)
    by_propensity[ranked] = single
    everyone = np.full(len(test), single, dtype=object)
    result = {
        "policy_value": value_of(choice),
        "all_best_treatment_value": value_of(everyone),
        "best_treatment": single,
        "propensity_ranking_value": value_of(by_propensity),
        "no_contact_value": value_of(np.full(len(test), control, dtype=object)),
        "contacted": int(contact.sum()), "contacted_share": float(contact.mean()),
        "chosen_by_treatment": {a: int((choice == a).sum()) for a in treatments},
        "budget": budget, "contact_cost": contact_cost, "objective": objective, "treatments": treatments,
        "control": control, "n_train": int(len(train)), "n_test": int(len(test)),
        "model": {"s": "S-learner", "t": "T-learner", "x": "X-learner"}[model] + " per treatment (LightGBM)",
        "value_estimator": "self-normalised inverse propensity weighting on the test rows, net of the contact cost",
        "choices_out": str(choices_out),
    }
    write_atomically(test.assign(choice=choice, predicted_impact=np.where(contact, best_impact, 0.0)),
                     choices_out, "--choices-out")
    return result
