"""Off-policy estimators: a synthetic bandit with known truth, hand-computed cases and input validation."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np
import pytest

from engine.model.ope import Estimate, RatioTerms, clip_weights, doubly_robust, ips, paired_bootstrap, snips, snips_terms

N_CONTEXTS, MAX_ACTIONS = 40, 5


@dataclass(frozen=True)
class LoggedBandit:
    """Logged decisions, the target policy's view of them, and the exact value of the target policy."""

    reward: np.ndarray
    logged_propensity: np.ndarray
    target_probability: np.ndarray
    true_reward_logged: np.ndarray  # q(x, a_logged), the true click probability
    true_value_target: np.ndarray  # q(x, target(x))
    noisy_reward_logged: np.ndarray  # a biased, noisy reward model's q̂(x, a_logged)
    noisy_value_target: np.ndarray
    truth: float  # value of the target policy, computed exactly


def simulate_bandit(n: int, seed: int, reward_noise: float | None = None) -> LoggedBandit:
    """Uniform contexts with 3 to 5 actions each; softmax logging policy; deterministic target policy.

    Rewards are clicks (Bernoulli with the true click probability q) or, given ``reward_noise``, a
    continuous reward q + N(0, reward_noise²) such as an order value.
    """
    rng = np.random.default_rng(seed)
    n_actions = rng.integers(3, MAX_ACTIONS + 1, size=N_CONTEXTS)
    valid = np.arange(MAX_ACTIONS)[None, :] < n_actions[:, None]
    click_prob = np.where(valid, rng.uniform(0.02, 0.4, size=valid.shape), 0.0)
    logits = np.where(valid, rng.normal(0.0, 0.7, size=valid.shape), -np.inf)
    logging = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    # The target policy ranks by a noisy view of the truth: better than logging, not perfect.
    target_action = np.argmax(np.where(valid, click_prob + rng.normal(0, 0.05, size=valid.shape), -np.inf), axis=1)
    truth = float(click_prob[np.arange(N_CONTEXTS), target_action].mean())  # contexts are uniform
    model = np.clip(click_prob + 0.03 + rng.normal(0, 0.05, size=valid.shape), 0, 1)  # biased on purpose

    x = rng.integers(0, N_CONTEXTS, size=n)
    cumulative = logging[x].cumsum(axis=1)
    a = np.minimum((rng.random(n)[:, None] >= cumulative).sum(axis=1), n_actions[x] - 1)
    if reward_noise is None:
        reward = (rng.random(n) < click_prob[x, a]).astype(float)
    else:
        reward = click_prob[x, a] + rng.normal(0, reward_noise, size=n)
    return LoggedBandit(
        reward=reward,
        logged_propensity=logging[x, a],
        target_probability=(a == target_action[x]).astype(float),
        true_reward_logged=click_prob[x, a],
        true_value_target=click_prob[x, target_action[x]],
        noisy_reward_logged=model[x, a],
        noisy_value_target=model[x, target_action[x]],
        truth=truth,
    )


@pytest.fixture(scope="module")
def bandit() -> LoggedBandit:
    return simulate_bandit(50_000, seed=3)


def _estimates(b: LoggedBandit, seed: int = 0) -> dict[str, Estimate]:
    logged = (b.reward, b.logged_propensity, b.target_probability)
    return {
        "ips": ips(*logged, seed=seed),
        "snips": snips(*logged, seed=seed),
        "dr": doubly_robust(*logged, b.noisy_reward_logged, b.noisy_value_target, seed=seed),
    }


def test_estimates_are_close_to_the_truth_and_their_intervals_cover_it(bandit: LoggedBandit):
    for name, estimate in _estimates(bandit).items():
        standard_error = (estimate.ci_high - estimate.ci_low) / (2 * 1.96)
        assert abs(estimate.value - bandit.truth) < 3 * standard_error, name
        assert estimate.ci_low <= bandit.truth <= estimate.ci_high, name
        assert estimate.n == 50_000
        # Beats the naive baseline: the logged mean reward is the logging policy's value, not the target's.
        assert abs(estimate.value - bandit.truth) < abs(bandit.reward.mean() - bandit.truth) / 5, name


def _ci_widths_with_a_perfect_model(b: LoggedBandit) -> tuple[float, float]:
    logged = (b.reward, b.logged_propensity, b.target_probability)
    by_ips = ips(*logged, seed=1)
    by_dr = doubly_robust(*logged, b.true_reward_logged, b.true_value_target, seed=1)
    assert by_dr.ci_low <= b.truth <= by_dr.ci_high
    return by_ips.ci_high - by_ips.ci_low, by_dr.ci_high - by_dr.ci_low


def test_dr_with_a_perfect_reward_model_is_much_tighter_than_ips():
    # DR keeps only w·(r − q): the weighted spread of q across contexts and actions is gone, the reward's
    # own noise stays. With a low-noise reward that is most of IPS's variance.
    ips_width, dr_width = _ci_widths_with_a_perfect_model(simulate_bandit(50_000, seed=3, reward_noise=0.05))
    assert dr_width < 0.3 * ips_width


def test_dr_with_a_perfect_reward_model_is_tighter_than_ips_even_for_clicks(bandit: LoggedBandit):
    # A click is Bernoulli(q): its own variance q(1 − q) dominates, so the gain is real but modest.
    ips_width, dr_width = _ci_widths_with_a_perfect_model(bandit)
    assert dr_width < 0.95 * ips_width


def test_snips_of_the_logging_policy_is_the_mean_reward(bandit: LoggedBandit):
    same_policy = snips(bandit.reward, bandit.logged_propensity, bandit.logged_propensity, seed=0)
    assert same_policy.value == pytest.approx(bandit.reward.mean(), rel=1e-12)


def test_hand_computed_values():
    reward, propensity, target = [1.0, 0.0, 1.0], [0.5, 0.25, 1.0], [1.0, 1.0, 0.0]
    # w = [1/0.5, 1/0.25, 0/1] = [2, 4, 0]; w·r = [2, 0, 0]
    assert ips(reward, propensity, target, seed=0).value == pytest.approx(2 / 3)  # (2 + 0 + 0) / 3
    assert snips(reward, propensity, target, seed=0).value == pytest.approx(2 / 6)  # 2 / (2 + 4 + 0)
    # Clipped at 3: w = [2, 3, 0] -> IPS (2 + 0 + 0) / 3, SNIPS 2 / 5.
    assert ips(reward, propensity, target, max_weight=3, seed=0).value == pytest.approx(2 / 3)
    assert snips(reward, propensity, target, max_weight=3, seed=0).value == pytest.approx(2 / 5)
    # DR with q̂ = 0.5 for each logged action, v̂ = [0.6, 0.2, 0.4]:
    # 0.6 + 2(1 − 0.5) = 1.6; 0.2 + 4(0 − 0.5) = −1.8; 0.4 + 0(1 − 0.5) = 0.4 -> (1.6 − 1.8 + 0.4) / 3
    dr = doubly_robust(reward, propensity, target, [0.5] * 3, [0.6, 0.2, 0.4], seed=0)
    assert dr.value == pytest.approx(0.2 / 3)
    np.testing.assert_array_equal(clip_weights(np.array([0.5, 3.0, 10.0]), 3.0), [0.5, 3.0, 3.0])


def test_snips_is_nan_when_the_target_never_takes_a_logged_action():
    estimate = snips([1.0, 0.0], [0.5, 0.5], [0.0, 0.0], seed=0)
    assert math.isnan(estimate.value) and math.isnan(estimate.ci_low) and math.isnan(estimate.ci_high)


def test_clipping_trades_bias_for_variance(bandit: LoggedBandit):
    logged = (bandit.reward, bandit.logged_propensity, bandit.target_probability)
    full, clipped = ips(*logged, seed=0), ips(*logged, max_weight=2.0, seed=0)
    assert clipped.ci_high - clipped.ci_low < full.ci_high - full.ci_low
    assert clipped.value < full.value  # rewards are non-negative: clipping can only pull IPS down


def test_bootstrap_is_reproducible_by_seed():
    b = simulate_bandit(2_000, seed=5)
    first, again, other = (_estimates(b, seed=s) for s in (7, 7, 8))
    assert first == again
    for name in first:
        assert other[name].value == first[name].value
        assert (other[name].ci_low, other[name].ci_high) != (first[name].ci_low, first[name].ci_high)


ONE_PER_DECISION = "expected one per logged decision"
GOOD = {"reward": [1.0, 0.0, 1.0], "logged_propensity": [0.5, 0.5, 1.0], "target_probability": [1.0, 0.0, 1.0]}


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"target_probability": [1.0, 0.0]}, f"target_probability has 2 values but reward has 3: {ONE_PER_DECISION}"),
        ({"logged_propensity": [0.5, 0.0, 1.0]}, "logged_propensity[1] = 0.0: expected 0 < p <= 1"),
        ({"logged_propensity": [0.5, 0.5, 1.5]}, "logged_propensity[2] = 1.5: expected 0 < p <= 1"),
        ({"logged_propensity": [np.nan, 0.5, 1.0]}, "logged_propensity[0] = nan: expected 0 < p <= 1"),
        ({"target_probability": [1.0, -0.1, 2.0]}, "target_probability[1] = -0.1: expected 0 <= p <= 1"),
        ({"reward": [1.0, 0.0, np.inf]}, "reward[2] = inf: expected a finite number"),
        ({"reward": [[1.0, 0.0, 1.0]]}, "reward has shape (1, 3): expected one value per logged decision"),
        (
            {"reward": [], "logged_propensity": [], "target_probability": []},
            "reward is empty: expected at least one logged decision",
        ),
    ],
)
def test_invalid_inputs_are_named_with_their_first_bad_index(changes: dict, message: str):
    arguments = GOOD | changes
    for estimator in (ips, snips):
        with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
            estimator(**arguments, seed=0)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        (
            {"predicted_reward_logged": [0.1, 0.2]},
            f"predicted_reward_logged has 2 values but reward has 3: {ONE_PER_DECISION}",
        ),
        ({"predicted_value_target": [0.1, np.nan, 0.3]}, "predicted_value_target[1] = nan: expected a finite number"),
        ({"max_weight": 0.0}, "max_weight = 0.0: expected a positive number"),
        ({"n_bootstrap": 0}, "n_bootstrap = 0: expected a positive integer"),
        ({"alpha": 1.0}, "alpha = 1.0: expected 0 < alpha < 1"),
    ],
)
def test_invalid_dr_inputs_and_options(changes: dict, message: str):
    arguments = GOOD | {"predicted_reward_logged": [0.1, 0.2, 0.3], "predicted_value_target": [0.1, 0.2, 0.3]}
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        doubly_robust(**(arguments | changes), seed=0)


def _slow_paired(candidate: RatioTerms, other: RatioTerms, n_bootstrap: int, seed: int) -> tuple[list, list, list]:
    """The paired bootstrap as a plain loop: draw the decisions, sum each policy's terms over them, divide."""
    rng = np.random.default_rng(seed)
    mine, theirs, difference = [], [], []
    for _ in range(n_bootstrap):
        rows = rng.integers(0, len(candidate.numerator), size=len(candidate.numerator))
        a = sum(candidate.numerator[i] for i in rows) / sum(candidate.denominator[i] for i in rows)
        b = sum(other.numerator[i] for i in rows) / sum(other.denominator[i] for i in rows)
        mine.append(a), theirs.append(b), difference.append(a - b)
    return mine, theirs, difference


def test_the_paired_bootstrap_is_the_slow_loop_and_pairs_the_resamples(bandit: LoggedBandit):
    b = bandit
    target = snips_terms(b.reward, b.logged_propensity, b.target_probability)
    logging = snips_terms(b.reward, b.logged_propensity, np.ones_like(b.reward))
    paired = paired_bootstrap(target, {"logging": logging}, n_bootstrap=50, seed=3)["logging"]
    mine, theirs, difference = _slow_paired(target, logging, 50, seed=3)
    for estimate, replicates, value in ((paired.candidate, mine, target.value), (paired.other, theirs, logging.value),
                                        (paired.difference, difference, target.value - logging.value)):
        assert estimate.value == pytest.approx(value)
        assert (estimate.ci_low, estimate.ci_high) == pytest.approx(tuple(np.quantile(replicates, [0.025, 0.975])))
    # The candidate's own interval is the one snips() gives with the same seed.
    alone = snips(b.reward, b.logged_propensity, b.target_probability, n_bootstrap=50, seed=3)
    assert (paired.candidate.ci_low, paired.candidate.ci_high) == pytest.approx((alone.ci_low, alone.ci_high))
    # Paired: the difference's interval is narrower than unpaired intervals would make it, as the two
    # values share most of their noise (the same rewards).
    unpaired = np.quantile(np.array(mine) - np.random.default_rng(9).permutation(theirs), [0.025, 0.975])
    assert paired.difference.ci_high - paired.difference.ci_low < unpaired[1] - unpaired[0]


def test_the_paired_bootstrap_refuses_policies_on_other_decisions():
    one = RatioTerms(np.ones(3), np.ones(3))
    with pytest.raises(ValueError, match="^popularity has 2 decisions but the candidate has 3: expected the same decisions$"):
        paired_bootstrap(one, {"popularity": RatioTerms(np.ones(2), np.ones(2))}, seed=0)
