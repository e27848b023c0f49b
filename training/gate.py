"""The promotion gate: should a freshly trained model become the ``champion``?

A pure decision on metric values, so it can be tested without MLflow and read in one place. The
candidate is promoted if it beats the popularity baseline by more than a margin and is at least as good
as the current champion (when there is one), or when a person forces it. The reason is written for the
CLI output and stored on the model version, so it always names the metric and the values compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    promote: bool  # alias "champion" if True, else "challenger"
    reason: str  # one sentence for a person, naming the metric and the values compared


GROUP_METRICS = ("ndcg@1", "ndcg@3", "ndcg@5", "map")


def metric_cannot_judge(metric: str, ordering_groups: int, groups: int) -> str | None:
    """Why ``metric`` cannot tell models apart on a test window, or None if it can. NDCG and MAP compare
    orders within query groups; with no group holding two impressions of different outcomes (e.g. one
    message per decision) every model, popularity and random alike, gets the same value."""
    if metric in GROUP_METRICS and ordering_groups == 0:
        return (f"{metric} cannot tell models apart on this test window: none of its {groups:,} query groups holds two "
                "impressions with different outcomes (one message per decision?), so every model scores the same; "
                'set [training] gate_metric = "auc"')
    return None


def model_cannot_split(splits: int, rows: int, min_data_in_leaf: int) -> str | None:
    """Why a fitted model is refused whatever its metrics: it made no split, so it scores every message
    the same."""
    if splits == 0:
        return (f"the model is constant (no tree made a split on {rows:,} training rows with [training] "
                f"min_data_in_leaf = {min_data_in_leaf}): give it more data or lower min_data_in_leaf")
    return None


def decide_promotion(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    metric: str,
    popularity: Mapping[str, float],
    min_gain_over_popularity: float = 0.0,
    force: bool = False,
    higher_is_better: bool = True,
    objections: Sequence[str] = (),
) -> GateDecision:
    """Decide whether ``candidate`` replaces ``champion`` (``None``: no model has been promoted yet).

    Promoted iff ``force``, or there is no objection (e.g. :func:`metric_cannot_judge`,
    :func:`model_cannot_split`), the candidate beats popularity on ``metric`` by more than
    ``min_gain_over_popularity`` and (there is no champion or the candidate is at least as good as it).
    A missing or NaN value on any side is a refusal naming the side, unless ``force`` is set.
    """
    if objections:
        return _refuse_or_force("; ".join(objections), force)
    sides: dict[str, Mapping[str, float]] = {"candidate": candidate, "popularity": popularity}
    if champion is not None:
        sides["champion"] = champion
    for side, metrics in sides.items():
        problem = _missing_or_nan(side, metrics, metric)
        if problem is not None:
            return _refuse_or_force(problem, force)

    value = float(candidate[metric])
    comparisons = _Comparisons(higher_is_better)
    failures: list[str] = []
    passes: list[str] = []
    if champion is not None:
        champion_value = float(champion[metric])
        if comparisons.at_least(value, champion_value):
            passes.append(f"{comparisons.at_least_sign} champion {champion_value:.3f}")
        else:
            failures.append(f"{comparisons.worse_sign} champion {champion_value:.3f}")
    popularity_value = float(popularity[metric])
    bar = _describe_bar(popularity_value, min_gain_over_popularity, higher_is_better)
    if comparisons.gain(value, popularity_value) > min_gain_over_popularity:
        passes.append(f"{comparisons.beats_sign} {bar}")
    else:
        failures.append(f"{comparisons.not_beats_sign} {bar}")

    if failures:
        return _refuse_or_force(f"{metric} {value:.3f} " + " and ".join(failures), force)
    first_model = "first model, " if champion is None else ""
    return GateDecision(True, f"promoted: {first_model}{metric} {value:.3f} " + " and ".join(passes))


@dataclass(frozen=True)
class _Comparisons:
    """The comparisons and their printed signs, for metrics where higher (or lower) is better."""

    higher_is_better: bool

    def at_least(self, value: float, other: float) -> bool:
        return value >= other if self.higher_is_better else value <= other

    def gain(self, value: float, baseline: float) -> float:
        return value - baseline if self.higher_is_better else baseline - value

    @property
    def at_least_sign(self) -> str:
        return ">=" if self.higher_is_better else "<="

    @property
    def worse_sign(self) -> str:
        return "<" if self.higher_is_better else ">"

    @property
    def beats_sign(self) -> str:
        return ">" if self.higher_is_better else "<"

    @property
    def not_beats_sign(self) -> str:
        return "<=" if self.higher_is_better else ">="


def _describe_bar(popularity_value: float, min_gain: float, higher_is_better: bool) -> str:
    if min_gain == 0:
        return f"popularity {popularity_value:.3f}"
    direction = "+" if higher_is_better else "-"
    return f"popularity {popularity_value:.3f} {direction} min gain {min_gain:.3f}"


def _missing_or_nan(side: str, metrics: Mapping[str, float], metric: str) -> str | None:
    if metric not in metrics:
        return f"{side} has no metric {metric}"
    if math.isnan(float(metrics[metric])):
        return f"{side} {metric} is NaN"
    return None


def _refuse_or_force(problem: str, force: bool) -> GateDecision:
    if force:
        return GateDecision(True, f"promoted by --force-promote ({problem})")
    return GateDecision(False, f"not promoted: {problem}")
