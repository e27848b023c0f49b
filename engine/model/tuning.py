"""A bounded search over the few LightGBM settings that matter, judged on the validation window.

Optuna's TPE sampler (seeded) proposes settings; each trial fits a :class:`Ranker` on the training rows,
early-stopped on the validation rows, and is worth the validation metric early stopping uses (log loss
for the binary objective, lower is better; NDCG@3 for lambdarank, higher is better) at its best round.
A median pruner stops a trial whose per-round validation metric trails the earlier trials' at the same
round. The first trial is always the given settings, run whatever the budget, so the best found is never
worse than them on the validation window.

Deterministic given the data, the seed and the number of trials run; a time budget may end the search
after fewer trials (it is checked between trials), and then the result depends on the machine's speed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import optuna

from engine.model.ranker import Ranker

# name -> (low, high, log scale); integers where LightGBM wants integers.
SEARCH_SPACE: dict[str, tuple[float, float, bool]] = {
    "num_leaves": (4, 63, True),
    "min_data_in_leaf": (10, 500, True),
    "learning_rate": (0.02, 0.2, True),
    "feature_fraction": (0.5, 1.0, False),
    "lambda_l2": (0.0, 10.0, False),
}
INTEGER_PARAMS = frozenset({"num_leaves", "min_data_in_leaf"})
# Trials the pruner lets finish before it compares, and rounds every trial runs before it can be pruned.
PRUNER_STARTUP_TRIALS = 3
PRUNER_WARMUP_ROUNDS = 10


@dataclass(frozen=True, eq=False)
class TuningData:
    """The rows a trial fits on and the rows it is judged on, as :meth:`Ranker.fit` takes them."""

    train_features: np.ndarray
    train_grades: np.ndarray
    train_groups: np.ndarray
    train_weight: np.ndarray | None
    valid_features: np.ndarray
    valid_grades: np.ndarray
    valid_groups: np.ndarray
    feature_names: tuple[str, ...]


@dataclass(frozen=True)
class TrialRecord:
    number: int
    params: dict[str, float | int]
    value: float  # the validation metric at the best round; for a pruned trial, at the round it was stopped
    rounds: int  # the best round, or the round a pruned trial was stopped at
    pruned: bool
    seconds: float


@dataclass(frozen=True)
class TuningResult:
    best_params: dict[str, float | int]
    best_value: float
    metric: str  # the validation metric, e.g. binary_logloss or ndcg@3
    higher_is_better: bool
    trials: tuple[TrialRecord, ...]
    budget_exhausted: bool  # the time budget ended the search before the trial cap

    @property
    def default_value(self) -> float:
        """The validation metric of the given settings (always trial 0)."""
        return self.trials[0].value


def validation_metric(objective: str) -> tuple[str, bool]:
    """The metric early stopping uses for ``objective`` and whether higher is better."""
    return ("ndcg@3", True) if objective == "lambdarank" else ("binary_logloss", False)


def tune(data: TuningData, base: Ranker, *, seed: int, budget_seconds: float, n_trials: int,
         on_trial: Callable[[TrialRecord], None] | None = None) -> TuningResult:
    """Search :data:`SEARCH_SPACE` around ``base`` (its other parameters are kept) for at most
    ``n_trials`` trials and about ``budget_seconds``; ``on_trial`` hears each finished or pruned trial."""
    if n_trials < 1:
        raise ValueError(f"n_trials must be at least 1, got {n_trials}")
    metric, higher = validation_metric(base.objective)
    base_params = base.get_params()
    records: list[TrialRecord] = []

    def objective(trial: optuna.Trial) -> float:
        params = {name: _suggest(trial, name) for name in SEARCH_SPACE}
        started, last = time.perf_counter(), {"round": 0, "value": float("nan")}

        def report(round_: int, value: float) -> None:
            last.update(round=round_, value=value)
            trial.report(value, round_)
            if trial.should_prune():
                raise optuna.TrialPruned()

        ranker = Ranker(**{**base_params, **params})
        try:
            ranker.fit(data.train_features, data.train_grades, data.train_groups, data.feature_names, data.valid_features,
                       data.valid_grades, data.valid_groups, weight=data.train_weight, on_validation=report)
        except optuna.TrialPruned:
            records.append(TrialRecord(trial.number, params, last["value"], last["round"], True, time.perf_counter() - started))
            _tell(on_trial, records[-1])
            raise
        value = float(ranker.validation_curve_[ranker.best_iteration_ - 1])
        records.append(TrialRecord(trial.number, params, value, ranker.best_iteration_, False, time.perf_counter() - started))
        _tell(on_trial, records[-1])
        return value

    optuna_logger = logging.getLogger("optuna")
    level = optuna_logger.level
    optuna_logger.setLevel(logging.WARNING)  # a line per trial is the caller's to print, through on_trial
    try:
        study = optuna.create_study(
            direction="maximize" if higher else "minimize",
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=PRUNER_STARTUP_TRIALS, n_warmup_steps=PRUNER_WARMUP_ROUNDS),
        )
        study.enqueue_trial({name: base_params[name] for name in SEARCH_SPACE})
        started = time.perf_counter()
        study.optimize(objective, n_trials=1)  # the given settings, whatever the budget: the yardstick
        if n_trials > 1:
            left = budget_seconds - (time.perf_counter() - started)
            if left > 0:
                study.optimize(objective, n_trials=n_trials - 1, timeout=left)
    finally:
        optuna_logger.setLevel(level)
    best = study.best_trial
    return TuningResult(best_params=dict(best.params), best_value=float(best.value), metric=metric, higher_is_better=higher,
                        trials=tuple(records), budget_exhausted=len(records) < n_trials)


def _suggest(trial: optuna.Trial, name: str) -> float | int:
    low, high, log = SEARCH_SPACE[name]
    if name in INTEGER_PARAMS:
        return trial.suggest_int(name, int(low), int(high), log=log)
    return trial.suggest_float(name, low, high, log=log)


def _tell(on_trial: Callable[[TrialRecord], None] | None, record: TrialRecord) -> None:
    if on_trial is not None:
        on_trial(record)
