"""The tuner finds better settings than a deliberately bad default, the same ones for the same seed, and
prunes trials that trail; the ranker hears the settings it searches."""

from __future__ import annotations

import numpy as np
import pytest

from engine.model.ranker import Ranker
from engine.model.tuning import SEARCH_SPACE, TuningData, tune, validation_metric

NAMES = ("a", "b", "c", "d")


def _rows(n: int, seed: int, *, per_group: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A response that needs an interaction of a and b (deep trees, many rounds) plus c; d is noise."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, len(NAMES)))
    p = 1 / (1 + np.exp(-(2.5 * x[:, 0] * x[:, 1] + x[:, 2])))
    grades = np.where(rng.random(n) < p, 2, 0)
    return x, grades, np.arange(n) // per_group


def _data(*, per_group: int = 1) -> TuningData:
    x, g, q = _rows(3000, 1, per_group=per_group)
    vx, vg, vq = _rows(2000, 2, per_group=per_group)
    return TuningData(x, g, q, None, vx, vg, vq, NAMES)


# One-split trees that need 500 rows per leaf and learn slowly: worse than anything the search proposes.
BAD = dict(num_leaves=4, min_data_in_leaf=500, learning_rate=0.02, feature_fraction=0.9, lambda_l2=0.0)


def _bad(objective: str = "binary") -> Ranker:
    return Ranker(objective=objective, max_rounds=80, num_threads=1, **BAD)


def test_the_search_beats_a_bad_default_on_the_validation_metric():
    result = tune(_data(), _bad(), seed=3, budget_seconds=120, n_trials=10)
    assert result.metric == "binary_logloss" and not result.higher_is_better
    assert result.trials[0].params == BAD and not result.trials[0].pruned  # the given settings come first
    assert result.default_value == result.trials[0].value
    assert result.best_value < result.default_value - 0.02
    assert result.best_params != BAD
    assert result.best_value == min(t.value for t in result.trials if not t.pruned)
    for name, value in result.best_params.items():
        low, high, _ = SEARCH_SPACE[name]
        assert low <= value <= high
    assert not result.budget_exhausted and len(result.trials) == 10


def test_lambdarank_maximises_validation_ndcg():
    result = tune(_data(per_group=5), _bad("lambdarank"), seed=3, budget_seconds=120, n_trials=6)
    assert (result.metric, result.higher_is_better) == ("ndcg@3", True) == validation_metric("lambdarank")
    assert result.best_value > result.default_value
    assert result.best_value == max(t.value for t in result.trials if not t.pruned)


def test_same_seed_and_trial_count_same_search():
    first = tune(_data(), _bad(), seed=11, budget_seconds=120, n_trials=6)
    again = tune(_data(), _bad(), seed=11, budget_seconds=120, n_trials=6)
    other = tune(_data(), _bad(), seed=12, budget_seconds=120, n_trials=6)
    assert first.best_params == again.best_params and first.best_value == again.best_value
    assert [t.params for t in first.trials] == [t.params for t in again.trials]
    assert [t.params for t in first.trials][1:] != [t.params for t in other.trials][1:]


def test_trials_that_trail_the_median_are_pruned_and_reported():
    heard = []
    result = tune(_data(), _bad(), seed=3, budget_seconds=120, n_trials=12, on_trial=heard.append)
    pruned = [t for t in result.trials if t.pruned]
    assert pruned, "no trial was pruned"
    # Pruned only after the warm-up rounds, and never one of the first trials the pruner compares with.
    assert all(t.rounds >= 10 and t.number >= 3 for t in pruned)
    assert heard == list(result.trials)


def test_a_zero_budget_runs_one_trial_and_says_the_budget_ended_it():
    result = tune(_data(), _bad(), seed=3, budget_seconds=0, n_trials=5)
    assert len(result.trials) == 1 and result.budget_exhausted
    assert result.best_params == BAD


def test_no_trials_is_refused():
    with pytest.raises(ValueError, match="n_trials must be at least 1, got 0"):
        tune(_data(), _bad(), seed=3, budget_seconds=10, n_trials=0)


def test_the_ranker_reports_each_rounds_validation_metric_and_passes_lambda_l2():
    d = _data()
    heard: list[tuple[int, float]] = []
    ranker = Ranker(max_rounds=20, num_threads=1, lambda_l2=3.0)
    ranker.fit(d.train_features, d.train_grades, d.train_groups, NAMES, d.valid_features, d.valid_grades, d.valid_groups,
               on_validation=lambda r, v: heard.append((r, v)))
    assert [r for r, _ in heard] == list(range(1, len(ranker.validation_curve_) + 1))
    assert [v for _, v in heard] == pytest.approx(ranker.validation_curve_)
    assert ranker.lightgbm_params()["lambda_l2"] == 3.0 and Ranker().lightgbm_params()["lambda_l2"] == 0.0
