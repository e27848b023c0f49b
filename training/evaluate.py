"""Honest offline evaluation on the test window: the model beside its baselines, in the same run.

- ranking metrics (NDCG@1/3/5, MAP, AUC), overall and per channel, on the logged test impressions;
- off-policy value of each policy's choices on replayed logged decisions (IPS, SNIPS, DR) with CIs;
- on simulated data, the true normalised gain of those choices per channel (ground truth).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.config import Settings
from engine.features.build import CatalogTable, ProfileTable, build_features
from engine.features.history import History
from engine.features.spec import FeatureSpec
from engine.model.baselines import all_baselines
from engine.model.decisions import DecisionReplay, off_policy_estimates
from engine.model.examples import Examples
from engine.model.metrics import ranking_report
from engine.model.ranker import Ranker
from engine.model.split import TEST, TRAIN
from engine.simulate import GroundTruth
from engine.simulate.evaluation import gain_of

MODEL = "model"
GROUND_TRUTH_DIR = "ground_truth"


@dataclass(frozen=True, eq=False)
class Evaluation:
    ranking: pd.DataFrame  # rows: (policy, segment); columns: ndcg@1.., map, auc, rows, groups
    off_policy: pd.DataFrame  # rows: (policy, estimator); columns: value, ci_low, ci_high, n
    gains: pd.DataFrame = field(default_factory=pd.DataFrame)  # rows: policy; columns: all + channels
    reward: str = "click"  # the outcome the off-policy value is the rate of
    notes: tuple[str, ...] = ()  # what could not be evaluated, and why

    def metrics(self) -> dict[str, float]:
        """Flat metric names for tracking and the gate: ``ndcg@3`` (the model), ``popularity.ndcg@3``,
        ``email.ndcg@3``, ``ope.ips``, ``gain``, ``gain.email``, ..."""
        out: dict[str, float] = {}
        for (policy, segment), row in self.ranking.iterrows():
            prefix = "" if policy == MODEL else f"{policy}."
            where = "" if segment == "all" else f"{segment}."
            for metric in ("ndcg@1", "ndcg@3", "ndcg@5", "map", "auc"):
                out[f"{prefix}{where}{metric}"] = float(row[metric])
        for (policy, estimator), row in self.off_policy.iterrows():
            prefix = "" if policy == MODEL else f"{policy}."
            out[f"{prefix}ope.{estimator}"] = float(row["value"])
        for policy, row in self.gains.iterrows():
            prefix = "" if policy == MODEL else f"{policy}."
            for segment, value in row.items():
                out[f"{prefix}gain" + ("" if segment == "all" else f".{segment}")] = float(value)
        return out


def evaluate(examples: Examples, ranker: Ranker, history: History, catalog: CatalogTable, profiles: ProfileTable,
             spec: FeatureSpec, settings: Settings, events: pd.DataFrame, messages: pd.DataFrame,
             truth: GroundTruth | None) -> Evaluation:
    t = settings.training
    train, test = examples.part(TRAIN), examples.part(TEST)
    grades = examples.frame["grade"].to_numpy()
    baselines = [b.fit(examples.frame.iloc[train], grades[train]) for b in all_baselines(t.seed, t.success_label)]

    test_frame = examples.frame.iloc[test].assign(label=grades[test])
    # Views, not copies (pandas copies an array by default): the matrices are the big objects here.
    test_values = examples.features_of(TEST)
    test_features = pd.DataFrame(test_values, columns=list(examples.features.names), copy=False)
    scores = {MODEL: ranker.predict(test_values)}
    scores.update({b.name: b.score(test_frame, test_features) for b in baselines})
    ranking = pd.concat(
        {name: ranking_report(test_frame.assign(score=s), "score", relevant_from=t.success_label) for name, s in scores.items()},
        names=["policy", "segment"],
    )

    replay = DecisionReplay.sample(test_frame, messages, n=t.replay_decisions, seed=t.seed, relevant_from=t.success_label)
    notes = [] if replay.has_propensities else [
        "off-policy estimates skipped: the test window's impressions carry no logging propensity (the events' "
        "`propensity` column); the gate and the report use the ranking metrics"]
    candidate_matrix = build_features(replay.candidates[["customer_id", "as_of", "message_id"]], history, catalog, profiles, spec)
    candidate_features = pd.DataFrame(candidate_matrix.values, columns=list(candidate_matrix.names), copy=False)
    candidate_scores = {MODEL: ranker.predict(candidate_matrix.values)}
    candidate_scores.update({b.name: b.score(replay.candidates, candidate_features) for b in baselines})
    off_policy: dict[tuple[str, str], dict] = {}
    gains: dict[str, dict[str, float]] = {}
    for name, s in candidate_scores.items():
        chosen = replay.choose(s)
        if replay.has_propensities:
            probabilities = name == MODEL and ranker.objective == "binary"
            estimates = off_policy_estimates(
                replay, chosen,
                predicted_logged=replay.score_at_choice(s, chosen, replay.decisions["message_id"].to_numpy()) if probabilities else None,
                predicted_chosen=replay.score_at_choice(s, chosen) if probabilities else None,
                seed=t.seed,
            )
            for estimator, e in estimates.items():
                off_policy[(name, estimator)] = {"value": e.value, "ci_low": e.ci_low, "ci_high": e.ci_high, "n": e.n}
        if truth is not None:
            gains[name] = _true_gains(truth, replay, chosen, events, messages, t.reward_outcome)
    if replay.has_propensities:
        logged_reward = float(replay.decisions["reward"].mean())
        off_policy[("logging", "mean_reward")] = {"value": logged_reward, "ci_low": np.nan, "ci_high": np.nan, "n": len(replay.decisions)}
    off_policy_frame = pd.DataFrame.from_dict(off_policy, orient="index", columns=["value", "ci_low", "ci_high", "n"])
    off_policy_frame.index = pd.MultiIndex.from_tuples(list(off_policy), names=["policy", "estimator"]) if off_policy else \
        pd.MultiIndex.from_arrays([[], []], names=["policy", "estimator"])
    return Evaluation(ranking, off_policy_frame, pd.DataFrame.from_dict(gains, orient="index"), reward=t.reward_outcome,
                      notes=tuple(notes))


def _true_gains(truth: GroundTruth, replay: DecisionReplay, chosen: np.ndarray, events: pd.DataFrame,
                messages: pd.DataFrame, reward: str) -> dict[str, float]:
    has_choice = pd.notna(chosen)
    decisions = replay.decisions.loc[has_choice, ["customer_id", "channel", "as_of"]].rename(columns={"as_of": "ts"})
    decisions["message_id"] = chosen[has_choice]
    values = truth.policy_values(decisions.reset_index(drop=True), events, messages, reward=reward)
    out = {"all": gain_of(values)}
    for channel, part in values.groupby("channel", sort=True):
        out[str(channel)] = gain_of(part)
    return out


def load_truth(data_dir: Path) -> GroundTruth | None:
    """The simulator's ground truth beside the data, if there is one."""
    folder = Path(data_dir) / GROUND_TRUTH_DIR
    return GroundTruth.load(folder) if folder.is_dir() else None
