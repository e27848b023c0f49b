"""Exploration: greedy without exploration, exact slot propensities, and draws that match them."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from engine.config import PolicySettings
from engine.policy.exploration import greedy_slates, select, select_with, slot_distribution

P = np.array([0.1, 0.5, 0.3])


@pytest.mark.parametrize("method", ["none", "epsilon_greedy", "softmax"])
def test_rate_zero_is_greedy_with_propensity_one_and_draws_nothing(method):
    rng = np.random.default_rng(0)
    before = rng.bit_generator.state
    chosen = select(np.array([0.2, 0.7, 0.7, 0.1]), 3, rng, method, rate=0.0 if method != "none" else 0.5)
    assert chosen.index.tolist() == [1, 2, 0]  # 0.7 tie: the earlier candidate first
    assert chosen.propensity.tolist() == [1.0, 1.0, 1.0]
    assert rng.bit_generator.state == before


def test_epsilon_greedy_single_slot_propensities_are_exact():
    # n = 3, ε = 0.3: the argmax (index 1) gets 0.7 + 0.3/3 = 0.8, the others 0.3/3 = 0.1.
    assert slot_distribution(P, "epsilon_greedy", 0.3, 1.0).tolist() == pytest.approx([0.1, 0.8, 0.1])
    for seed in range(20):
        chosen = select(P, 1, np.random.default_rng(seed), "epsilon_greedy", 0.3)
        assert chosen.propensity[0] == pytest.approx(0.8 if chosen.index[0] == 1 else 0.1)


def test_softmax_at_full_rate_is_the_boltzmann_distribution():
    # T = 0.5: e^0.2 = 1.2214, e^1.0 = 2.7183, e^0.6 = 1.8221, sum 5.7618 -> 0.2120, 0.4718, 0.3162.
    expected = np.array([0.2120, 0.4718, 0.3162])
    assert slot_distribution(P, "softmax", 1.0, 0.5).tolist() == pytest.approx(expected.tolist(), abs=1e-4)
    # At rate 0.4 the greedy share 0.6 is added to the argmax.
    mixed = slot_distribution(P, "softmax", 0.4, 0.5)
    assert mixed.tolist() == pytest.approx([0.4 * 0.2120, 0.6 + 0.4 * 0.4718, 0.4 * 0.3162], abs=1e-4)
    # Huge priorities do not overflow: the shift by the maximum keeps exp() finite.
    assert np.isfinite(slot_distribution(np.array([1e6, 1e6 - 1]), "softmax", 1.0, 0.01)).all()


def test_later_slots_are_conditional_on_the_earlier_ones():
    # ε = 0.3. If slot 1 took index 1, slot 2 chooses among {0, 2}: greedy is 2 -> 0.7 + 0.15 = 0.85, 0 -> 0.15.
    for seed in range(50):
        chosen = select(P, 2, np.random.default_rng(seed), "epsilon_greedy", 0.3)
        if chosen.index[0] == 1:
            assert chosen.propensity[1] == pytest.approx(0.85 if chosen.index[1] == 2 else 0.15)


@pytest.mark.parametrize(("method", "rate", "temperature"), [("epsilon_greedy", 0.3, 1.0), ("softmax", 0.6, 0.2)])
def test_empirical_slate_frequencies_match_the_logged_propensities(method, rate, temperature):
    """20,000 seeded draws of ordered 2-slates from 4 candidates. The product of the two slot propensities
    is the slate's probability p; its observed share has standard deviation sqrt(p(1 - p)/N) <= 0.0036, so
    5 standard deviations (a chance below 1e-6 per slate for a correct sampler) is the tolerance. The logged
    propensity of a slate must also be the same every time it is drawn."""
    priorities, draws = np.array([0.2, 0.6, 0.4, 0.1]), 20_000
    rng = np.random.default_rng(2026)
    seen, logged = Counter(), {}
    for _ in range(draws):
        chosen = select(priorities, 2, rng, method, rate, temperature)
        slate = tuple(chosen.index.tolist())
        seen[slate] += 1
        p = float(np.prod(chosen.propensity))
        assert logged.setdefault(slate, p) == pytest.approx(p)
    assert sum(logged.values()) == pytest.approx(1.0) and len(logged) == 12  # every ordered pair drawn
    for slate, p in logged.items():
        assert abs(seen[slate] / draws - p) <= 5 * np.sqrt(p * (1 - p) / draws), slate


def test_edges_k_larger_than_n_zero_and_empty():
    rng = np.random.default_rng(1)
    assert sorted(select(P, 10, rng, "epsilon_greedy", 0.5).index.tolist()) == [0, 1, 2]
    assert select(P, 0, rng).index.tolist() == []
    assert select(np.zeros(0), 3, rng, "softmax", 1.0).propensity.tolist() == []
    with pytest.raises(ValueError, match="NaN"):
        select(np.array([0.1, np.nan]), 1, rng)
    with pytest.raises(ValueError, match="unknown exploration method 'ucb'"):
        select(P, 1, rng, "ucb", 0.5)  # type: ignore[arg-type]


def test_select_with_reads_the_policy_settings():
    settings = PolicySettings(exploration="epsilon_greedy", exploration_rate=1.0)
    # Rate 1 with ε-greedy is uniform: each of 3 candidates 1/3 in the first slot.
    chosen = select_with(P, 1, np.random.default_rng(5), settings)
    assert chosen.propensity.tolist() == pytest.approx([1 / 3])
    assert select_with(P, 2, np.random.default_rng(5), PolicySettings()).index.tolist() == [1, 2]


def test_greedy_needs_no_generator_and_a_policy_that_draws_says_it_needs_one():
    priorities = np.array([0.2, 0.9, 0.5])
    chosen = select(priorities, 2, None, "epsilon_greedy", rate=0.0)
    assert chosen.index.tolist() == [1, 2] and chosen.propensity.tolist() == [1.0, 1.0]
    assert select(priorities, 1, None, "none", rate=0.5).index.tolist() == [1]
    with pytest.raises(ValueError, match="needs a generator"):
        select(priorities, 1, None, "epsilon_greedy", rate=0.3)


def test_greedy_slates_are_the_highest_remaining_in_turn_ties_to_the_earlier_candidate():
    rng = np.random.default_rng(21)
    for _ in range(300):
        priorities = rng.integers(0, 4, size=int(rng.integers(0, 9))).astype(float) / 4  # many ties, and zeros
        k = int(rng.integers(0, 6))
        remaining, expected = list(range(len(priorities))), []
        for _ in range(min(k, len(priorities))):  # the obvious loop
            best = max(remaining, key=lambda i: (priorities[i], -i))
            expected.append(best)
            remaining.remove(best)
        chosen = select(priorities, k, None, "none")
        assert chosen.index.tolist() == expected and chosen.propensity.tolist() == [1.0] * len(expected)


def test_greedy_slates_equal_select_without_exploration_slate_by_slate():
    rng = np.random.default_rng(3)
    # Ties (a few distinct values), an empty slate, k above and below the slate's size, zeros.
    priorities = [rng.choice([0.0, 0.1, 0.5, 0.9], size=n) for n in (7, 0, 1, 30, 5, 12)]
    ks = [3, 1, 2, 30, 9, 1]
    priorities.append(np.array([0.5, 0.9, 0.9, 0.1]))  # one slot, tied maxima: the earlier one
    ks.append(1)
    for p, k, (index, propensity, first) in zip(priorities, ks, greedy_slates(priorities, ks)):
        expected = select(p, k, None)
        np.testing.assert_array_equal(index, expected.index)
        np.testing.assert_array_equal(propensity, expected.propensity)
        if len(p):
            np.testing.assert_array_equal(first, slot_distribution(p, "none", 0.0, 1.0))
        else:
            assert len(first) == 0
    assert greedy_slates([], []) == []
