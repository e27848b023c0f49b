"""How much normalised gain the customers' own history allows on a simulated world: policies that know
part of the simulator's truth, evaluated on the same replayed test decisions as ``nbm train``.

    .venv/bin/python bench/quality_ceiling.py [--data .nbm/bench/world-q]

Each policy scores a candidate by the true response model's click logit (interest, stage match, fatigue,
repetition) with some of its inputs replaced by what could be known:

- true interest and true stage: the oracle (about 1.0);
- true interest, stage from the rule-based ``journey_stage`` feature;
- estimated interest (the topics of the customer's visits and purchases before the decision, shrunk
  towards the customer's segment x age band), stage probabilities from a LightGBM classifier trained on
  the *true* stages of the training impressions: information no real data set has, so an upper bound
  for what the features can tell.

A model's gain close to the last line means the data, not the model, limits it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.config import Settings  # noqa: E402
from engine.contract.load import load_dataset  # noqa: E402
from engine.features.build import CatalogTable, ProfileTable, build_features  # noqa: E402
from engine.features.spec import FeatureSpec  # noqa: E402
from engine.model.decisions import DecisionReplay  # noqa: E402
from engine.model.examples import build_examples, history_for  # noqa: E402
from engine.model.split import TEST, TRAIN  # noqa: E402
from engine.policy.eligibility import expand_candidates  # noqa: E402
from engine.simulate.evaluation import gain_of  # noqa: E402
from engine.simulate.ground_truth import GroundTruth  # noqa: E402
from engine.simulate.replay import LoggedHistory, history_state  # noqa: E402
from engine.simulate.response import ResponseCoefficients  # noqa: E402
from engine.simulate.timeline import series_to_ns  # noqa: E402
from engine.simulate.world import stage_at  # noqa: E402

# Interest and stage enter the click and (half) the open logit: 1.5 times their click weight in all.
FUNNEL = 1.5
PRIOR_STRENGTH = 5.0  # pseudo-events of the segment x age band's topic shares in the interest estimate


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / ".nbm" / "bench" / "world-q")
    data = parser.parse_args().data
    settings, t = Settings(), Settings().training
    dataset = load_dataset(data, settings.validation)
    spec = FeatureSpec.fit(dataset.messages, dataset.customers, settings.features)
    history = history_for(dataset.events, spec)
    catalog, profiles = CatalogTable.from_messages(dataset.messages, spec), ProfileTable.from_customers(dataset.customers)
    examples = build_examples(dataset.events, history, catalog, profiles, spec, settings, messages=dataset.messages)
    test = examples.part(TEST)
    test_frame = examples.frame.iloc[test].assign(label=examples.frame["grade"].to_numpy()[test])
    replay = DecisionReplay.sample(test_frame, n=t.replay_decisions, seed=t.seed, relevant_from=t.success_label)
    # Every valid message of the decision's channel: the oracles below know no policy, so they choose
    # among all of them (what the simulator's oracle gain is normalised by).
    candidates = expand_candidates(replay.decisions, dataset.messages)
    for name in ("customer_id", "channel", "as_of"):
        candidates[name] = replay.decisions[name].to_numpy()[candidates["decision"].to_numpy()]
    features = build_features(candidates[["customer_id", "as_of", "message_id"]], history, catalog, profiles, spec)
    truth = GroundTruth.load(data / "ground_truth")
    latents, coef = truth.latents, ResponseCoefficients.from_params(truth.params)

    customer = truth.customer_codes(candidates["customer_id"], "candidates")
    message = truth.message_codes(candidates["message_id"], "candidates")
    ts = series_to_ns(candidates["as_of"], "candidates.as_of")
    state = history_state(LoggedHistory.from_events(dataset.events, truth.customer_ids, truth.message_ids), latents,
                          truth.catalog, truth.params.fatigue_window_days, customer, message, ts)
    topic, message_stage = truth.catalog.topic[message], truth.catalog.stage[message]
    penalty = coef.fatigue_strength * state.same_topic_exposures + coef.repetition_penalty * state.times_shown

    def gain(score: np.ndarray, name: str) -> None:
        chosen = _argmax(candidates, score, len(replay.decisions))
        has = pd.notna(chosen)
        decisions = replay.decisions.loc[has, ["customer_id", "channel", "as_of"]].rename(columns={"as_of": "ts"})
        decisions["message_id"] = chosen[has]
        values = truth.policy_values(decisions.reset_index(drop=True), dataset.events, dataset.messages, reward="click")
        channels = " ".join(f"{c} {gain_of(part):.3f}" for c, part in values.groupby("channel"))
        print(f"quality ceiling: {name:58s} gain {gain_of(values):.3f} ({channels})", flush=True)

    def by_stage(interest: np.ndarray, stage: np.ndarray) -> np.ndarray:
        match = (message_stage == stage).astype(np.float64)
        return FUNNEL * (coef.interest_weight * interest + coef.stage_match_lift * match - penalty)

    true_interest = latents.centred_interest[customer, topic]
    gain(by_stage(true_interest, state.true_stage), "true interest, true stage")
    gain(by_stage(true_interest, features.values[:, list(features.names).index("journey_stage")]),
         "true interest, rule-based journey_stage feature")

    stage_probability = _stage_classifier(examples, truth).predict_proba(features.values)[np.arange(len(message)), message_stage]
    lift = np.exp(FUNNEL * coef.stage_match_lift)
    estimated = _estimated_interest(dataset.events, truth, replay)[candidates["decision"].to_numpy(), topic]
    gain(FUNNEL * coef.interest_weight * estimated + np.log(stage_probability * lift + 1 - stage_probability) - FUNNEL * penalty,
         "estimated interest, stage probabilities from true stages")


def _argmax(candidates: pd.DataFrame, score: np.ndarray, n_decisions: int) -> np.ndarray:
    """The best-scoring candidate's message per decision (ties: the first row), None without a candidate."""
    best = pd.Series(score).groupby(candidates["decision"].to_numpy()).idxmax()
    chosen = np.full(n_decisions, None, dtype=object)
    chosen[best.index.to_numpy()] = candidates["message_id"].to_numpy(dtype=object)[best.to_numpy()]
    return chosen


def _stage_classifier(examples, truth: GroundTruth) -> lgb.LGBMClassifier:
    frame = examples.frame
    rows = np.arange(len(frame))[examples.part(TRAIN)]
    customer = truth.customer_codes(frame["customer_id"].iloc[rows], "examples")
    stage = stage_at(truth.latents.stage_entry_ns[customer], series_to_ns(frame["ts"].iloc[rows], "examples.ts"))
    return lgb.LGBMClassifier(objective="multiclass", n_estimators=200, num_leaves=31, random_state=0, verbose=-1,
                              n_jobs=2).fit(examples.features.values[rows], stage)


def _estimated_interest(events: pd.DataFrame, truth: GroundTruth, replay: DecisionReplay) -> np.ndarray:
    """Per decision and topic: log of (topic's visits and purchases before the decision + the segment x age
    band's mean topic shares x PRIOR_STRENGTH), centred over topics, as the true interest is."""
    latents, n_topics = truth.latents, len(truth.params.topics)
    cell = latents.segment.astype(np.int64) * 100 + latents.age_band
    prior = np.zeros_like(latents.centred_interest)
    for code in np.unique(cell):
        prior[cell == code] = latents.centred_interest[cell == code].mean(axis=0)
    shares = np.exp(prior)
    shares /= shares.sum(axis=1, keepdims=True)

    organic = events[events["event_type"].isin(["visit", "purchase"]) & events["topic"].notna()]
    key = (truth.customer_codes(organic["customer_id"], "events").astype(np.int64) * n_topics
           + pd.Index(truth.params.topics).get_indexer(organic["topic"].astype(str)))
    when = series_to_ns(organic["ts"], "events.ts")
    order = np.lexsort((when, key))
    key, when = key[order], when[order]
    decided = truth.customer_codes(replay.decisions["customer_id"], "decisions").astype(np.int64)
    at = series_to_ns(replay.decisions["as_of"], "decisions.as_of")
    counts = np.empty((len(decided), n_topics))
    for t in range(n_topics):
        wanted = decided * n_topics + t
        # Sorted by (key, time): the events of a key before a time sit between two searches on the pair.
        first = np.searchsorted(key, wanted, "left")
        counts[:, t] = np.array([np.searchsorted(when[lo:hi], ts, "left") for lo, hi, ts in
                                 zip(first, np.searchsorted(key, wanted, "right"), at)])
    estimate = np.log(counts + PRIOR_STRENGTH * shares[decided])
    return estimate - estimate.mean(axis=1, keepdims=True)


if __name__ == "__main__":
    main()
