"""Negative sampling and the ranker on data whose true click probability is known."""

from __future__ import annotations

import numpy as np
import pytest

from engine.model.ranker import Ranker
from engine.model.sampling import sample_negatives
from engine.model.split import TEST, TRAIN, VALIDATION


def _world(seed: int, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One informative feature x and one noise feature; P(click) = 0.02 + 0.10 * x for x in [0, 1]: rare
    positives, as in the simulated world. Grades: 2 (click) or 0."""
    rng = np.random.default_rng(seed)
    x = rng.random((n, 2)).astype(np.float32)
    p = 0.02 + 0.10 * x[:, 0]
    grades = np.where(rng.random(n) < p, 2, 0)
    return x, grades, p


def _fit(rate: float) -> Ranker:
    x, grades, _ = _world(1, 60_000)
    keep, weight = sample_negatives(grades, np.full(len(grades), TRAIN), relevant_from=2, rate=rate, seed=3)
    vx, vgrades, _ = _world(2, 20_000)
    groups, vgroups = np.arange(keep.sum()) // 10, np.arange(len(vx)) // 10
    ranker = Ranker(objective="binary", num_leaves=7, learning_rate=0.1, max_rounds=60, min_data_in_leaf=200, num_threads=1)
    return ranker.fit(x[keep], grades[keep], groups, ("x", "noise"), vx, vgrades, vgroups, weight=weight)


def test_sampled_negatives_with_weights_keep_probabilities_calibrated():
    tx, _, true_p = _world(3, 40_000)
    full, sampled = _fit(1.0).predict(tx), _fit(0.2).predict(tx)
    # Unweighted, a 20% sample of negatives would inflate the mean probability about 4x (7% -> ~27%); the
    # 1/rate weights keep it at the true mean, 0.02 + 0.10 * 0.5 = 0.07, as the full fit does.
    assert true_p.mean() == pytest.approx(0.07, abs=0.002)
    assert sampled.mean() == pytest.approx(0.07, abs=0.01)
    assert full.mean() == pytest.approx(0.07, abs=0.01)
    # And the order still follows the informative feature.
    assert np.corrcoef(sampled, true_p)[0, 1] > 0.9


def test_only_training_negatives_are_sampled_and_the_draw_is_seeded():
    grades = np.array([0] * 1000 + [2] * 50 + [3] * 10 + [0] * 100 + [1] * 100)  # train: 1060 rows
    split = np.array([TRAIN] * 1060 + [VALIDATION] * 100 + [TEST] * 100)
    keep, weight = sample_negatives(grades, split, relevant_from=2, rate=0.25, seed=5)
    assert keep[1000:].all()  # positives (grade >= 2) and every validation and test row stay
    assert 200 <= keep[:1000].sum() <= 300  # about a quarter of the 1000 training negatives
    assert len(weight) == keep.sum()
    kept_negatives = int(keep[:1000].sum())
    assert np.all(weight[:kept_negatives] == 4.0) and np.all(weight[kept_negatives:] == 1.0)
    again, _ = sample_negatives(grades, split, relevant_from=2, rate=0.25, seed=5)
    np.testing.assert_array_equal(keep, again)
    with pytest.raises(ValueError, match="rate"):
        sample_negatives(grades, split, relevant_from=2, rate=0.0, seed=5)


def test_each_boosting_round_is_reported_against_the_most_there_can_be():
    x, grades, _ = _world(1, 5_000)
    vx, vgrades, _ = _world(2, 2_000)
    heard: list[tuple[int, int]] = []
    ranker = Ranker(objective="binary", num_leaves=7, learning_rate=0.1, max_rounds=12, min_data_in_leaf=50, num_threads=1)
    ranker.fit(x, grades, np.arange(len(x)) // 10, ("x", "noise"), vx, vgrades, np.arange(len(vx)) // 10,
               on_round=lambda *done_most: heard.append(done_most))
    assert heard[0] == (1, 12) and [d for d, _ in heard] == list(range(1, len(heard) + 1)) and len(heard) <= 12


def test_a_fit_on_blocks_of_rows_is_the_fit_on_the_joined_rows_and_for_refit_grows_the_chosen_rounds():
    x, grades, _ = _world(4, 6_000)
    groups = np.arange(len(x)) // 10
    fitted = Ranker(num_leaves=7, learning_rate=0.3, max_rounds=200, early_stopping_rounds=5, min_data_in_leaf=50, num_threads=1).fit(
        x[:4_000], grades[:4_000], groups[:4_000], ("x", "noise"), x[4_000:], grades[4_000:], groups[4_000:])
    assert fitted.best_iteration_ < 200  # early stopping chose fewer rounds than allowed
    refit = fitted.for_refit()
    assert refit.get_params() == {**fitted.get_params(), "max_rounds": fitted.best_iteration_}
    joined = refit.fit(x, grades, groups, ("x", "noise")).booster_.model_to_string()
    blocks = fitted.for_refit().fit([x[:2_500], x[2_500:]], grades, groups, ("x", "noise"))
    assert blocks.booster_.model_to_string() == joined
    assert blocks.booster_.num_trees() == fitted.best_iteration_
