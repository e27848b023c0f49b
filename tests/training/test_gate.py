"""The promotion gate: every rule and the exact sentence a person reads."""

from __future__ import annotations

import math

import pytest

from training.gate import GateDecision, GateMetric, Measured, Versus, decide_promotion, resolve_gate_metric

# An off-policy gate: values with their 95% intervals, differences paired.
CANDIDATE = Measured(0.0612, 0.0581, 0.0644)
CHAMPION = Versus(Measured(0.0605, 0.0575, 0.0636), Measured(0.0007, -0.0011, 0.0025))
POPULARITY = Versus(Measured(0.0480, 0.0451, 0.0510), Measured(0.0132, 0.0101, 0.0160))


def test_a_candidate_within_the_tolerance_that_beats_popularity_is_promoted_and_the_reason_names_every_interval():
    assert decide_promotion("dr", CANDIDATE, CHAMPION, POPULARITY) == GateDecision(
        True, "promoted: dr 0.0612 [0.0581, 0.0644] vs champion 0.0605 (difference +0.0007 [-0.0011, +0.0025], tolerance 2%) "
              "and vs popularity 0.0480 (difference +0.0132 [+0.0101, +0.0160])")
    assert decide_promotion("dr", CANDIDATE, None, POPULARITY) == GateDecision(
        True, "promoted: first model, dr 0.0612 [0.0581, 0.0644] vs popularity 0.0480 (difference +0.0132 [+0.0101, +0.0160])")


def test_the_tolerance_is_a_share_of_the_champions_value():
    # 2% of 0.0600 is 0.0012: a candidate 0.0011 below passes, 0.0013 below does not.
    close = Versus(Measured(0.0600, 0.0570, 0.0630), Measured(-0.0011, -0.0030, 0.0008))
    far = Versus(Measured(0.0600, 0.0570, 0.0630), Measured(-0.0013, -0.0031, 0.0006))
    assert decide_promotion("snips", Measured(0.0589, 0.0560, 0.0620), close, POPULARITY).promote
    assert decide_promotion("snips", Measured(0.0587, 0.0558, 0.0618), far, POPULARITY) == GateDecision(
        False, "not promoted: snips 0.0587 [0.0558, 0.0618] vs champion 0.0600 (difference -0.0013 [-0.0031, +0.0006], "
               "beyond the tolerance of 2%: -0.0012) and vs popularity 0.0480 (difference +0.0132 [+0.0101, +0.0160])")
    assert not decide_promotion("snips", Measured(0.0589), close, POPULARITY, tolerance=0.0).promote
    assert decide_promotion("snips", Measured(0.0587), far, POPULARITY, tolerance=0.05).promote


def test_beating_popularity_needs_the_lower_bound_of_the_paired_difference_above_the_margin():
    noisy = Versus(Measured(0.0480), Measured(0.0132, -0.0004, 0.0260))  # a higher value, within the noise
    assert decide_promotion("dr", CANDIDATE, None, noisy) == GateDecision(
        False, "not promoted: dr 0.0612 [0.0581, 0.0644] vs popularity 0.0480 (difference +0.0132 [-0.0004, +0.0260], "
               "lower bound not above 0)")
    assert decide_promotion("dr", CANDIDATE, None, POPULARITY, min_gain_over_popularity=0.0101) == GateDecision(
        False, "not promoted: dr 0.0612 [0.0581, 0.0644] vs popularity 0.0480 (difference +0.0132 [+0.0101, +0.0160], "
               "lower bound not above min gain 0.0101)")
    assert decide_promotion("dr", CANDIDATE, None, POPULARITY, min_gain_over_popularity=0.0100) == GateDecision(
        True, "promoted: first model, dr 0.0612 [0.0581, 0.0644] vs popularity 0.0480 (difference +0.0132 [+0.0101, +0.0160], "
              "lower bound above min gain 0.0100)")
    # Beating popularity is required even when the champion itself is worse than popularity.
    champion = Versus(Measured(0.0400), Measured(0.0060))
    assert not decide_promotion("dr", Measured(0.0460), champion, Versus(Measured(0.0480), Measured(-0.0020))).promote


def test_a_ranking_metric_without_intervals_compares_the_values():
    popularity = Versus(Measured(0.6211), Measured(0.0808))
    assert decide_promotion("auc", Measured(0.7019), None, popularity) == GateDecision(
        True, "promoted: first model, auc 0.7019 vs popularity 0.6211 (difference +0.0808)")
    assert decide_promotion("auc", Measured(0.6111), None, Versus(Measured(0.6211), Measured(-0.0100))) == GateDecision(
        False, "not promoted: auc 0.6111 vs popularity 0.6211 (difference -0.0100, difference not above 0)")
    champion = Versus(Measured(0.7200), Measured(-0.0181))
    assert decide_promotion("auc", Measured(0.7019), champion, popularity) == GateDecision(
        False, "not promoted: auc 0.7019 vs champion 0.7200 (difference -0.0181, beyond the tolerance of 2%: -0.0144) "
               "and vs popularity 0.6211 (difference +0.0808)")


def test_force_promotes_and_says_what_it_overrode():
    worse = Versus(Measured(0.0605), Measured(-0.0100, -0.0130, -0.0070))
    assert decide_promotion("dr", Measured(0.0505), worse, POPULARITY, force=True) == GateDecision(
        True, "promoted by --force-promote (dr 0.0505 vs champion 0.0605 (difference -0.0100 [-0.0130, -0.0070], beyond the "
              "tolerance of 2%: -0.0012) and vs popularity 0.0480 (difference +0.0132 [+0.0101, +0.0160]))")


def test_force_when_the_gate_passes_anyway_reads_as_a_normal_promotion():
    assert decide_promotion("dr", CANDIDATE, CHAMPION, POPULARITY, force=True) == decide_promotion("dr", CANDIDATE, CHAMPION, POPULARITY)


def test_a_champion_that_cannot_be_compared_is_named_in_the_reason():
    decision = decide_promotion("dr", CANDIDATE, None, POPULARITY, without_champion="champion 4 uses other features, compared with popularity only")
    assert decision.reason.startswith("promoted: champion 4 uses other features, compared with popularity only, dr 0.0612")


@pytest.mark.parametrize(
    ("candidate", "champion", "popularity", "reason"),
    [
        (Measured(math.nan), CHAMPION, POPULARITY, "not promoted: candidate dr is NaN"),
        (CANDIDATE, Versus(Measured(math.nan), Measured(0.0)), POPULARITY, "not promoted: champion dr is NaN"),
        (CANDIDATE, Versus(Measured(0.06), Measured(math.nan)), POPULARITY, "not promoted: champion difference dr is NaN"),
        (CANDIDATE, None, Versus(Measured(math.nan), Measured(0.01)), "not promoted: popularity dr is NaN"),
        (CANDIDATE, None, Versus(Measured(0.05), Measured(math.nan)), "not promoted: popularity difference dr is NaN"),
    ],
)
def test_a_nan_value_is_a_refusal_naming_the_side(candidate, champion, popularity, reason):
    assert decide_promotion("dr", candidate, champion, popularity) == GateDecision(False, reason)


def test_force_overrides_a_nan_value_and_says_so():
    decision = decide_promotion("dr", Measured(math.nan), None, POPULARITY, force=True)
    assert decision == GateDecision(True, "promoted by --force-promote (candidate dr is NaN)")


def test_auto_resolves_to_the_served_policys_off_policy_value_or_says_why_not():
    assert resolve_gate_metric("auto", "binary", True) == GateMetric("dr")
    assert resolve_gate_metric("auto", "lambdarank", True) == GateMetric("snips")
    assert resolve_gate_metric("auto", "binary", False) == GateMetric("auc", note=(
        "the gate compares auc on the test window, not the off-policy value of the served policy: the logged impressions "
        "carry no propensity"))
    assert resolve_gate_metric("auto", "lambdarank", False).name == "ndcg@3"
    assert resolve_gate_metric("ips", "binary", True) == GateMetric("ips")
    assert resolve_gate_metric("map", "binary", False) == GateMetric("map")
    assert (GateMetric("snips").key, GateMetric("auc").key) == ("ope.snips", "auc")


def test_an_off_policy_metric_without_propensities_is_an_objection_naming_the_fix():
    assert resolve_gate_metric("snips", "lambdarank", False).objection == (
        '[training] gate_metric = "snips" needs the logging propensity of each logged impression (the events\' `propensity` '
        'column), which this test window lacks: log propensities, or set gate_metric = "auto" (ndcg@3 here)')


def test_a_group_metric_without_a_group_to_order_cannot_judge_and_auc_can():
    from training.gate import metric_cannot_judge

    reason = metric_cannot_judge("ndcg@3", ordering_groups=0, groups=1_234)
    assert reason == ("ndcg@3 cannot tell models apart on this test window: none of its 1,234 query groups holds two "
                      "impressions with different outcomes (one message per decision?), so every model scores the same; "
                      'set [training] gate_metric = "auc"')
    assert metric_cannot_judge("map", ordering_groups=0, groups=5) is not None
    assert metric_cannot_judge("ndcg@3", ordering_groups=1, groups=5) is None
    assert metric_cannot_judge("auc", ordering_groups=0, groups=5) is None


def test_an_objection_refuses_whatever_the_metrics_and_force_overrides_it():
    from training.gate import model_cannot_split

    constant = model_cannot_split(0, rows=20, min_data_in_leaf=100)
    assert constant == ("the model is constant (no tree made a split on 20 training rows with [training] "
                        "min_data_in_leaf = 100): give it more data or lower min_data_in_leaf")
    assert model_cannot_split(3, rows=20, min_data_in_leaf=1) is None
    refused = decide_promotion("dr", CANDIDATE, None, POPULARITY, objections=[constant])
    assert refused == GateDecision(False, f"not promoted: {constant}")
    forced = decide_promotion("dr", CANDIDATE, None, POPULARITY, objections=[constant], force=True)
    assert forced.promote and constant in forced.reason
