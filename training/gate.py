"""The promotion gate: should a freshly trained model become the ``champion``?

A pure decision on metric values, so it can be tested without MLflow and read in one place. The
candidate is promoted if it beats the popularity baseline by more than a margin and is at least as good
as the current champion (when there is one), or when a person forces it. The reason is written for the
CLI output and stored on the model version, so it always names the metric and the values compared.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True)
class GateDecision:
    promote: bool  # alias "champion" if True, else "challenger"
    reason: str  # one sentence for a person, naming the metric and the values compared


def decide_promotion(
    candidate: Mapping[str, float],
    champion: Mapping[str, float] | None,
    *,
    metric: str,
    popularity: Mapping[str, float],
    min_gain_over_popularity: float = 0.0,
    force: bool = False,
    higher_is_better: bool = True,
) -> GateDecision:
    """Decide whether ``candidate`` replaces ``champion`` (``None``: no model has been promoted yet).

    Promoted iff ``force``, or the candidate beats popularity on ``metric`` by more than
    ``min_gain_over_popularity`` and (there is no champion or the candidate is at least as good as it).
    A missing or NaN value on any side is a refusal naming the side, unless ``force`` is set.
    """
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
