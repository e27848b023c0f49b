"""Honest offline evaluation on the test window: the model beside its baselines, in the same run.

- ranking metrics (NDCG@1/3/5, MAP, AUC), overall and per channel, on the logged test impressions;
- off-policy value (IPS, SNIPS, DR) of what each policy would have SERVED at replayed logged decisions:
  the decision engine with the configured policy (exploration off) decides each one from the events
  before it (:mod:`engine.policy.replay`), the model and each baseline as its scorer; intervals, and
  each baseline's (and the champion's) paired difference to the model;
- on simulated data, the true normalised gain of those served choices per channel (ground truth).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from engine.config import Settings
from engine.features.history import History
from engine.features.spec import FeatureSpec
from engine.model.baselines import all_baselines
from engine.model.bundle import Bundle
from engine.model.decisions import CandidateScores, DecisionReplay, PolicyChoices, compare_policies, off_policy_estimates
from engine.model.examples import Examples, history_for
from engine.model.metrics import ranking_report
from engine.model.ranker import Ranker
from engine.model.split import TEST, TRAIN
from engine.policy.online import DecisionEngine
from engine.policy.replay import (BaselineScorer, BoosterScorer, ReplayRequests, replay_bundle, replay_choices,
                                  without_exploration)
from engine.simulate import GroundTruth
from engine.simulate.evaluation import gain_of

MODEL = "model"
CHAMPION = "champion"
POPULARITY = "popularity"
GROUND_TRUTH_DIR = "ground_truth"
_OFF_POLICY_COLUMNS = ["value", "ci_low", "ci_high", "n"]
_COMPARISON_COLUMNS = ["difference", "ci_low", "ci_high", "n"]


@dataclass(frozen=True, eq=False)
class Replayed:
    """The replayed decisions, as engine requests, and what each policy served at them; ``reward_model``:
    the model's scores of every candidate when they are probabilities (DR's predictions), else None."""

    replay: DecisionReplay
    requests: ReplayRequests
    choices: dict[str, PolicyChoices]
    reward_model: CandidateScores | None


@dataclass(frozen=True, eq=False)
class Evaluation:
    ranking: pd.DataFrame  # rows: (policy, segment); columns: ndcg@1.., map, auc, rows, groups
    off_policy: pd.DataFrame  # rows: (policy, estimator); columns: value, ci_low, ci_high, n
    gains: pd.DataFrame = field(default_factory=pd.DataFrame)  # rows: policy; columns: all + channels
    reward: str = "click"  # the outcome the off-policy value is the rate of
    notes: tuple[str, ...] = ()  # what could not be evaluated, and why
    # rows: (other policy, estimator); columns: the model's value minus the other's, paired interval, n
    comparisons: pd.DataFrame = field(default_factory=lambda: _frame({}, _COMPARISON_COLUMNS, ["policy", "estimator"]))
    replayed: Replayed | None = None

    def metrics(self) -> dict[str, float]:
        """Flat metric names for tracking and the gate: ``ndcg@3`` (the model), ``popularity.ndcg@3``,
        ``email.ndcg@3``, ``ope.snips`` with ``ope.snips.ci_low`` and ``ope.snips.ci_high``,
        ``champion.ope.snips``, ``ope.snips.vs.popularity`` (the model's value minus popularity's) with
        its ``.ci_low`` and ``.ci_high``, ``gain``, ``gain.email``, ..."""
        out: dict[str, float] = {}
        for (policy, segment), row in self.ranking.iterrows():
            prefix = "" if policy == MODEL else f"{policy}."
            where = "" if segment == "all" else f"{segment}."
            for metric in ("ndcg@1", "ndcg@3", "ndcg@5", "map", "auc"):
                out[f"{prefix}{where}{metric}"] = float(row[metric])
        for (policy, estimator), row in self.off_policy.iterrows():
            name = ("" if policy == MODEL else f"{policy}.") + f"ope.{estimator}"
            out[name] = float(row["value"])
            if np.isfinite(row["ci_low"]):
                out[f"{name}.ci_low"], out[f"{name}.ci_high"] = float(row["ci_low"]), float(row["ci_high"])
        for (policy, estimator), row in self.comparisons.iterrows():
            name = f"ope.{estimator}.vs.{policy}"
            out[name], out[f"{name}.ci_low"], out[f"{name}.ci_high"] = (float(row[k]) for k in ("difference", "ci_low", "ci_high"))
        for policy, row in self.gains.iterrows():
            prefix = "" if policy == MODEL else f"{policy}."
            for segment, value in row.items():
                out[f"{prefix}gain" + ("" if segment == "all" else f".{segment}")] = float(value)
        return out


def evaluate(examples: Examples, ranker: Ranker, history: History, spec: FeatureSpec, settings: Settings,
             events: pd.DataFrame, messages: pd.DataFrame, customers: pd.DataFrame, truth: GroundTruth | None) -> Evaluation:
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

    replay = DecisionReplay.sample(test_frame, n=t.replay_decisions, seed=t.seed, relevant_from=t.success_label)
    notes = [] if replay.has_propensities else [
        "off-policy estimates skipped: the test window's impressions carry no logging propensity (the events' "
        "`propensity` column); the gate and the report use the ranking metrics"]
    requests = ReplayRequests.of(replay.decisions, events)
    bundle = replay_bundle(spec=spec, feature_names=examples.features.names, messages=messages, customers=customers,
                           state=requests.state(history.log, settings.features.max_window_days), booster=ranker.booster_,
                           metadata={"model_version": "candidate", "objective": ranker.objective})
    policy = without_exploration(settings)
    model = BoosterScorer.of(ranker.booster_, examples.features.names, probability=ranker.objective == "binary",
                             num_iteration=ranker.best_iteration_, num_threads=t.num_threads)
    choices = {MODEL: replay_choices(DecisionEngine(bundle, policy, scorer=model), requests, keep_scores=model.probability)}
    channel_of = dict(zip(messages["message_id"].astype(str), messages["channel"].astype(str)))
    for b in baselines:
        scorer = BaselineScorer(b, examples.features.names, channel_of)
        choices[b.name] = replay_choices(DecisionEngine(bundle, policy, scorer=scorer), requests)
    replayed = Replayed(replay, requests, choices, choices[MODEL].scores)
    evaluation = Evaluation(ranking, _frame({}, _OFF_POLICY_COLUMNS, ["policy", "estimator"]), reward=t.reward_outcome,
                            notes=tuple(notes), replayed=replayed)
    return with_policies(evaluation, choices, truth=truth, events=events, messages=messages, seed=t.seed)


def with_policies(evaluation: Evaluation, valued: dict[str, PolicyChoices], *, truth: GroundTruth | None, events: pd.DataFrame,
                  messages: pd.DataFrame, seed: int) -> Evaluation:
    """``evaluation`` with the replayed policies ``valued`` (the model, the baselines; later the champion)
    valued: each one's off-policy estimates, each other policy's paired difference to the model on every
    estimator, and on simulated data each one's true gain. Policies valued before keep their rows."""
    replayed = evaluation.replayed
    replay, model = replayed.replay, replayed.choices[MODEL]
    others = {name: choices for name, choices in valued.items() if name != MODEL}
    off_policy = _rows(evaluation.off_policy)
    comparisons = _rows(evaluation.comparisons)
    gains = evaluation.gains.to_dict(orient="index")
    if replay.has_propensities:
        for name, choices in valued.items():
            for estimator, e in off_policy_estimates(replay, choices, reward_model=replayed.reward_model, seed=seed).items():
                off_policy[(name, estimator)] = [e.value, e.ci_low, e.ci_high, e.n]
        for estimator in sorted({estimator for _, estimator in off_policy if estimator != "mean_reward"}):
            paired = compare_policies(replay, model, others, estimator, reward_model=replayed.reward_model, seed=seed)
            for name, p in paired.items():
                d = p.difference
                comparisons[(name, estimator)] = [d.value, d.ci_low, d.ci_high, d.n]
        off_policy[("logging", "mean_reward")] = [float(replay.decisions["reward"].mean()), np.nan, np.nan, len(replay.decisions)]
    if truth is not None:
        for name, choices in valued.items():
            gains[name] = _true_gains(truth, replay, choices.chosen, events, messages, evaluation.reward)
    return dataclasses.replace(evaluation, off_policy=_frame(off_policy, _OFF_POLICY_COLUMNS, ["policy", "estimator"]),
                               comparisons=_frame(comparisons, _COMPARISON_COLUMNS, ["policy", "estimator"]),
                               gains=pd.DataFrame.from_dict(gains, orient="index"))


def replay_champion(champion: Bundle, evaluation: Evaluation, settings: Settings, events: pd.DataFrame,
                    messages: pd.DataFrame, customers: pd.DataFrame) -> PolicyChoices:
    """What the champion would have served at the replayed decisions: the engine on its spec and feature
    names, its evaluated model as the scorer (the refit one has seen this test window), a state of this
    run's events in its vocabulary and this run's catalog (a message it does not know is no candidate).
    Raises :class:`engine.errors.ModelMismatchError` when this code builds other features."""
    requests = evaluation.replayed.requests
    log = history_for(events, champion.spec).log
    bundle = replay_bundle(spec=champion.spec, feature_names=champion.feature_names, messages=messages, customers=customers,
                           state=requests.state(log, champion.spec.settings.max_window_days), booster=champion.evaluation_booster,
                           metadata={**champion.metadata, "model_version": champion.version})
    scorer = BoosterScorer.of(champion.evaluation_booster, champion.feature_names,
                              probability=champion.metadata.get("objective", "binary") == "binary",
                              num_threads=settings.training.num_threads)
    return replay_choices(DecisionEngine(bundle, without_exploration(settings), scorer=scorer), requests)


def _rows(frame: pd.DataFrame) -> dict[tuple[str, str], list]:
    return {key: list(row) for key, row in zip(frame.index, frame.to_numpy().tolist())}


def _frame(rows: dict[tuple[str, str], list], columns: list[str], names: list[str]) -> pd.DataFrame:
    index = pd.MultiIndex.from_tuples(list(rows), names=names) if rows else pd.MultiIndex.from_arrays([[], []], names=names)
    frame = pd.DataFrame(list(rows.values()), index=index, columns=columns)
    return frame.astype({"n": np.int64}) if rows else frame


def _true_gains(truth: GroundTruth, replay: DecisionReplay, chosen: np.ndarray, events: pd.DataFrame,
                messages: pd.DataFrame, reward: str) -> dict[str, float]:
    has_choice = pd.notna(chosen)  # a policy that suppressed everything sends nothing
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
