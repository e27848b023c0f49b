"""The promotion gate: should a freshly trained model become the ``champion``?

A pure decision on measured values, so it can be tested without MLflow and read in one place. By default
the values are the off-policy value of the SERVED policy (the decision engine with the configured policy)
on the same replayed test decisions for the candidate, the champion and popularity, with paired bootstrap
intervals of the candidate's differences to them (training/evaluate.py). The candidate is promoted if it
is not worse than the champion beyond a relative tolerance and beats popularity beyond the interval's
noise, or when a person forces it. The reason is written for the CLI output and stored on the model
version, so it always names the metric, the values and their intervals.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

OFF_POLICY_METRICS = ("ips", "snips", "dr")


@dataclass(frozen=True)
class GateDecision:
    promote: bool  # alias "champion" if True, else "challenger"
    reason: str  # one sentence for a person, naming the metric and the values compared


@dataclass(frozen=True)
class Measured:
    """A value with its 95% interval (NaN bounds: none, e.g. a ranking metric)."""

    value: float
    ci_low: float = math.nan
    ci_high: float = math.nan


@dataclass(frozen=True)
class Versus:
    """Another policy's value and the candidate's difference to it (candidate - other), whose interval
    comes from the same resamples as both values (paired)."""

    other: Measured
    difference: Measured


@dataclass(frozen=True)
class GateMetric:
    """The metric the gate compares, as resolved for this run (:func:`resolve_gate_metric`)."""

    name: str  # ips, snips, dr, auc, ndcg@3, ...
    note: str | None = None  # why auto chose a ranking metric
    objection: str | None = None  # why the configured metric cannot judge this run

    @property
    def off_policy(self) -> bool:
        return self.name in OFF_POLICY_METRICS

    @property
    def key(self) -> str:
        """Its name among the evaluation's metrics (training/evaluate.py ``Evaluation.metrics``)."""
        return f"ope.{self.name}" if self.off_policy else self.name


def resolve_gate_metric(gate_metric: str, objective: str, has_propensities: bool) -> GateMetric:
    """``[training] gate_metric`` for this run. auto: dr for the binary objective (the model's probabilities
    are DR's reward model), snips for lambdarank; when the replayed decisions carry no logging propensity,
    the objective's ranking metric (auc, ndcg@3), with a note. An off-policy metric named explicitly on
    such data is an objection."""
    ranking = "auc" if objective == "binary" else "ndcg@3"
    if gate_metric == "auto":
        if has_propensities:
            return GateMetric("dr" if objective == "binary" else "snips")
        return GateMetric(ranking, note=(f"the gate compares {ranking} on the test window, not the off-policy value of the "
                                         "served policy: the logged impressions carry no propensity"))
    if gate_metric in OFF_POLICY_METRICS and not has_propensities:
        return GateMetric(gate_metric, objection=(
            f'[training] gate_metric = "{gate_metric}" needs the logging propensity of each logged impression (the events\' '
            f'`propensity` column), which this test window lacks: log propensities, or set gate_metric = "auto" ({ranking} here)'))
    return GateMetric(gate_metric)


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
    metric: str,
    candidate: Measured,
    champion: Versus | None,
    popularity: Versus,
    *,
    tolerance: float = 0.02,
    min_gain_over_popularity: float = 0.0,
    force: bool = False,
    objections: Sequence[str] = (),
    without_champion: str = "first model",
) -> GateDecision:
    """Decide whether ``candidate`` replaces ``champion`` (``None``: no model has been promoted yet, or
    the champion cannot be compared: ``without_champion`` says which in the reason).

    Promoted iff ``force``, or there is no objection (e.g. :func:`metric_cannot_judge`,
    :func:`model_cannot_split`), the candidate's difference to the champion is at least
    ``-tolerance * |champion value|`` and the candidate beats popularity: the lower bound of its difference
    to popularity (the difference itself without an interval) exceeds ``min_gain_over_popularity``.
    A NaN value on any side is a refusal naming the side, unless ``force`` is set.
    """
    if objections:
        return _refuse_or_force("; ".join(objections), force)
    sides = {"candidate": candidate, "popularity": popularity.other, "popularity difference": popularity.difference}
    if champion is not None:
        sides |= {"champion": champion.other, "champion difference": champion.difference}
    for side, measured in sides.items():
        if math.isnan(measured.value):
            return _refuse_or_force(f"{side} {metric} is NaN", force)

    parts, passed = [], True
    if champion is not None:
        bar = -tolerance * abs(champion.other.value)
        within = champion.difference.value >= bar
        passed &= within
        parts.append(f"vs champion {champion.other.value:.4f} (difference {_signed(champion.difference)}, "
                     + (f"tolerance {_share(tolerance)})" if within else f"beyond the tolerance of {_share(tolerance)}: {bar:+.4f})"))
    d = popularity.difference
    lower = d.ci_low if math.isfinite(d.ci_low) else d.value
    beats = lower > min_gain_over_popularity
    passed &= beats
    bound = "lower bound" if math.isfinite(d.ci_low) else "difference"
    margin = "" if min_gain_over_popularity == 0 else f"min gain {min_gain_over_popularity:.4f}"
    verdict = (f", {bound} above {margin}" if margin else "") if beats else f", {bound} not above {margin or '0'}"
    parts.append(f"vs popularity {popularity.other.value:.4f} (difference {_signed(d)}{verdict})")
    summary = f"{metric} {_plain(candidate)} " + " and ".join(parts)
    if not passed:
        return _refuse_or_force(summary, force)
    return GateDecision(True, "promoted: " + (f"{without_champion}, " if champion is None else "") + summary)


def _plain(m: Measured) -> str:
    return f"{m.value:.4f}" + (f" [{m.ci_low:.4f}, {m.ci_high:.4f}]" if math.isfinite(m.ci_low) else "")


def _signed(m: Measured) -> str:
    return f"{m.value:+.4f}" + (f" [{m.ci_low:+.4f}, {m.ci_high:+.4f}]" if math.isfinite(m.ci_low) else "")


def _share(tolerance: float) -> str:
    return f"{tolerance * 100:g}%"


def _refuse_or_force(problem: str, force: bool) -> GateDecision:
    if force:
        return GateDecision(True, f"promoted by --force-promote ({problem})")
    return GateDecision(False, f"not promoted: {problem}")
