"""The ranker on data whose true click probability is known."""

from __future__ import annotations

import numpy as np
import pytest

from engine.model.ranker import Ranker


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
    vx, vgrades, _ = _world(2, 20_000)
    groups, vgroups = np.arange(len(x)) // 10, np.arange(len(vx)) // 10
    ranker = Ranker(objective="binary", negative_sample_rate=rate, num_leaves=7, learning_rate=0.1, max_rounds=60,
                    min_data_in_leaf=200, num_threads=1)
    return ranker.fit(x, grades, groups, ("x", "noise"), vx, vgrades, vgroups)


def test_negative_sampling_keeps_probabilities_calibrated():
    tx, _, true_p = _world(3, 40_000)
    full, sampled = _fit(1.0).predict(tx), _fit(0.2).predict(tx)
    # Unweighted, a 20% sample of negatives would inflate the mean probability about 4x (7% -> ~27%); the
    # 1/rate weights keep it at the true mean, 0.02 + 0.10 * 0.5 = 0.07, as the full fit does.
    assert true_p.mean() == pytest.approx(0.07, abs=0.002)
    assert sampled.mean() == pytest.approx(0.07, abs=0.01)
    assert full.mean() == pytest.approx(0.07, abs=0.01)
    # And the order still follows the informative feature.
    assert np.corrcoef(sampled, true_p)[0, 1] > 0.9


def test_negative_sampling_fits_on_fewer_rows_and_is_seeded():
    ranker = Ranker(objective="binary", negative_sample_rate=0.25, seed=5)
    grades = np.array([0] * 1000 + [2] * 50)
    keep, weight = ranker._sampled_negatives(grades)
    assert set(range(1000, 1050)) <= set(keep.tolist())  # every positive stays
    negatives = int((keep < 1000).sum())
    assert 200 <= negatives <= 300  # about a quarter of 1000
    assert np.all(weight[keep < 1000] == 4.0) and np.all(weight[keep >= 1000] == 1.0)
    again, _ = Ranker(objective="binary", negative_sample_rate=0.25, seed=5)._sampled_negatives(grades)
    np.testing.assert_array_equal(keep, again)
    # lambdarank ranks within groups: it never drops rows.
    assert Ranker(objective="lambdarank", negative_sample_rate=0.25)._sampled_negatives(grades) == (None, None)
