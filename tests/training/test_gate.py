"""The promotion gate: every rule and the exact sentence a person reads."""

from __future__ import annotations

import math

import pytest

from training.gate import GateDecision, decide_promotion

POPULARITY = {"ndcg@3": 0.301}


def decide(candidate: float, champion: float | None, **options) -> GateDecision:
    champion_metrics = None if champion is None else {"ndcg@3": champion}
    return decide_promotion({"ndcg@3": candidate}, champion_metrics, metric="ndcg@3", popularity=POPULARITY, **options)


@pytest.mark.parametrize(
    ("candidate", "champion", "expected"),
    [
        (0.412, 0.398, GateDecision(True, "promoted: ndcg@3 0.412 >= champion 0.398 and > popularity 0.301")),
        (0.398, 0.398, GateDecision(True, "promoted: ndcg@3 0.398 >= champion 0.398 and > popularity 0.301")),
        (0.412, None, GateDecision(True, "promoted: first model, ndcg@3 0.412 > popularity 0.301")),
        (0.380, 0.398, GateDecision(False, "not promoted: ndcg@3 0.380 < champion 0.398")),
        (0.290, None, GateDecision(False, "not promoted: ndcg@3 0.290 <= popularity 0.301")),
        (0.301, None, GateDecision(False, "not promoted: ndcg@3 0.301 <= popularity 0.301")),
        (0.290, 0.398, GateDecision(False, "not promoted: ndcg@3 0.290 < champion 0.398 and <= popularity 0.301")),
        # Beating popularity is required even when the champion itself is worse than popularity.
        (0.295, 0.250, GateDecision(False, "not promoted: ndcg@3 0.295 <= popularity 0.301")),
    ],
)
def test_rules_and_reasons(candidate, champion, expected):
    assert decide(candidate, champion) == expected


def test_gain_over_popularity_must_exceed_the_margin():
    assert decide(0.305, None, min_gain_over_popularity=0.01) == GateDecision(
        False, "not promoted: ndcg@3 0.305 <= popularity 0.301 + min gain 0.010"
    )
    assert decide(0.320, None, min_gain_over_popularity=0.01) == GateDecision(
        True, "promoted: first model, ndcg@3 0.320 > popularity 0.301 + min gain 0.010"
    )


def test_force_promotes_and_says_what_it_overrode():
    assert decide(0.380, 0.398, force=True) == GateDecision(
        True, "promoted by --force-promote (ndcg@3 0.380 < champion 0.398)"
    )


def test_force_when_the_gate_passes_anyway_reads_as_a_normal_promotion():
    assert decide(0.412, 0.398, force=True) == GateDecision(
        True, "promoted: ndcg@3 0.412 >= champion 0.398 and > popularity 0.301"
    )


def test_lower_is_better_flips_every_comparison():
    decision = decide_promotion(
        {"logloss": 0.30}, {"logloss": 0.31}, metric="logloss", popularity={"logloss": 0.50}, higher_is_better=False
    )
    assert decision == GateDecision(True, "promoted: logloss 0.300 <= champion 0.310 and < popularity 0.500")
    worse = decide_promotion(
        {"logloss": 0.32}, {"logloss": 0.31}, metric="logloss", popularity={"logloss": 0.50}, higher_is_better=False,
        min_gain_over_popularity=0.25,
    )
    assert worse == GateDecision(
        False, "not promoted: logloss 0.320 > champion 0.310 and >= popularity 0.500 - min gain 0.250"
    )


@pytest.mark.parametrize(
    ("candidate", "champion", "popularity", "reason"),
    [
        ({}, {"ndcg@3": 0.4}, POPULARITY, "not promoted: candidate has no metric ndcg@3"),
        ({"ndcg@3": math.nan}, {"ndcg@3": 0.4}, POPULARITY, "not promoted: candidate ndcg@3 is NaN"),
        ({"ndcg@3": 0.5}, {"map@3": 0.4}, POPULARITY, "not promoted: champion has no metric ndcg@3"),
        ({"ndcg@3": 0.5}, {"ndcg@3": math.nan}, POPULARITY, "not promoted: champion ndcg@3 is NaN"),
        ({"ndcg@3": 0.5}, None, {}, "not promoted: popularity has no metric ndcg@3"),
        ({"ndcg@3": 0.5}, None, {"ndcg@3": float("nan")}, "not promoted: popularity ndcg@3 is NaN"),
    ],
)
def test_missing_or_nan_metric_is_a_refusal_naming_the_side(candidate, champion, popularity, reason):
    decision = decide_promotion(candidate, champion, metric="ndcg@3", popularity=popularity)
    assert decision == GateDecision(False, reason)


def test_force_overrides_a_missing_metric_and_says_so():
    decision = decide_promotion({}, None, metric="ndcg@3", popularity=POPULARITY, force=True)
    assert decision == GateDecision(True, "promoted by --force-promote (candidate has no metric ndcg@3)")


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
    refused = decide_promotion({"auc": 0.9}, None, metric="auc", popularity={"auc": 0.5}, objections=[constant])
    assert refused == GateDecision(False, f"not promoted: {constant}")
    forced = decide_promotion({"auc": 0.9}, None, metric="auc", popularity={"auc": 0.5}, objections=[constant], force=True)
    assert forced.promote and constant in forced.reason
