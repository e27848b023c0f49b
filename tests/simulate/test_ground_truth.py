"""The ground truth recomputes the simulator's probabilities from the written log and scores policies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from engine.simulate import GroundTruth, SimulatedWorld
from engine.simulate.replay import LoggedHistory, history_state
from engine.simulate.timeline import series_to_ns

PROBABILITIES = ["p_open", "p_click", "p_conversion"]


@pytest.fixture(scope="module")
def loaded_truth(small_dir: Path) -> GroundTruth:
    return GroundTruth.load(small_dir / "ground_truth")


def test_probabilities_recomputed_from_the_written_log_equal_the_sampled_ones(
        loaded_truth: GroundTruth, written_events: pd.DataFrame) -> None:
    logged = loaded_truth.impressions
    assert len(logged) == (written_events["event_type"] == "impression").sum()
    recomputed = loaded_truth.response_probabilities(logged[["customer_id", "message_id", "ts"]], written_events)
    np.testing.assert_allclose(recomputed[PROBABILITIES].to_numpy(), logged[PROBABILITIES].to_numpy(),
                               rtol=0, atol=1e-12)
    # the history really varies, so the check above is not trivially about fresh customers
    assert logged["same_topic_exposures"].max() >= 2 and logged["times_shown"].max() >= 1
    assert logged["last_survey"].notna().sum() > 50


def test_loaded_truth_equals_the_in_memory_truth(small_world: SimulatedWorld, loaded_truth: GroundTruth) -> None:
    assert loaded_truth.params == small_world.truth.params
    np.testing.assert_array_equal(loaded_truth.latents.interest, small_world.truth.latents.interest)
    np.testing.assert_array_equal(loaded_truth.latents.stage_entry_ns, small_world.truth.latents.stage_entry_ns)
    np.testing.assert_array_equal(loaded_truth.logging_scores, small_world.truth.logging_scores)
    np.testing.assert_array_equal(loaded_truth.catalog.valid_to_ns, small_world.truth.catalog.valid_to_ns)
    assert list(loaded_truth.message_ids) == list(small_world.messages["message_id"])


def test_history_state_matches_a_naive_loop(loaded_truth: GroundTruth, written_events: pd.DataFrame) -> None:
    rng = np.random.default_rng(0)
    impressions = written_events[written_events["event_type"] == "impression"]
    sample = impressions.iloc[rng.choice(len(impressions), 150, replace=False)]
    customer = loaded_truth.customer_codes(sample["customer_id"], "sample")
    message = loaded_truth.message_codes(sample["message_id"], "sample")
    history = LoggedHistory.from_events(written_events, loaded_truth.customer_ids, loaded_truth.message_ids)
    state = history_state(history, loaded_truth.latents, loaded_truth.catalog,
                          loaded_truth.params.fatigue_window_days, customer, message,
                          series_to_ns(sample["ts"]))
    topic_of = dict(zip(loaded_truth.message_ids, loaded_truth.catalog.topic))
    surveys = written_events[written_events["event_type"] == "survey"]
    for i, row in enumerate(sample.itertuples()):
        window_start = row.ts.floor("D") - pd.Timedelta(days=loaded_truth.params.fatigue_window_days)
        mine = impressions[(impressions["customer_id"] == row.customer_id) & (impressions["ts"] < row.ts)]
        same_topic = [topic_of[m] == topic_of[row.message_id] for m in mine["message_id"]]
        assert state.same_topic_exposures[i] == (np.array(same_topic, bool) & (mine["ts"] >= window_start)).sum()
        assert state.times_shown[i] == (mine["message_id"] == row.message_id).sum()
        answered = surveys[(surveys["customer_id"] == row.customer_id) & (surveys["ts"] < row.ts)]
        expected_survey = answered["value"].iloc[-1] if len(answered) else np.nan
        np.testing.assert_equal(state.last_survey[i], expected_survey)


def test_unknown_ids_are_rejected_by_name(loaded_truth: GroundTruth, written_events: pd.DataFrame) -> None:
    request = pd.DataFrame({"customer_id": ["nobody"], "message_id": [loaded_truth.message_ids[0]],
                            "ts": [written_events["ts"].iloc[-1]]})
    with pytest.raises(ValueError, match="customer_id 'nobody' is not in this world"):
        loaded_truth.response_probabilities(request, written_events)


# --- the logging policy -------------------------------------------------------------------------------

def test_logging_propensities_are_recomputable_and_sum_to_one(loaded_truth: GroundTruth,
                                                              written_events: pd.DataFrame) -> None:
    impressions = written_events[written_events["event_type"] == "impression"].reset_index(drop=True)
    distribution = loaded_truth.logging_distribution(impressions[["customer_id", "channel", "ts"]])
    totals = distribution.groupby("row")["probability"].sum()
    assert len(totals) == len(impressions)
    np.testing.assert_allclose(totals.to_numpy(), 1.0, rtol=0, atol=1e-12)

    chosen = distribution.merge(pd.DataFrame({"row": np.arange(len(impressions)),
                                              "message_id": impressions["message_id"].astype(str),
                                              "logged": impressions["propensity"]}), on=["row", "message_id"])
    assert len(chosen) == len(impressions), "every logged message was eligible"
    np.testing.assert_allclose(chosen["probability"], chosen["logged"], rtol=0, atol=1e-12)

    # the messages were really drawn from these distributions: counts match their expectations
    expected = distribution.groupby("message_id")["probability"].sum()
    observed = impressions["message_id"].astype(str).value_counts().reindex(expected.index, fill_value=0)
    assert (np.abs(observed - expected) <= 4 * np.sqrt(expected) + 2).all()


# --- policy evaluation --------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def decision_points(written_events: pd.DataFrame) -> pd.DataFrame:
    impressions = written_events[written_events["event_type"] == "impression"]
    return impressions.sample(2_000, random_state=1)[["customer_id", "channel", "ts"]].reset_index(drop=True)


@pytest.fixture(scope="module")
def candidate_values(loaded_truth: GroundTruth, decision_points: pd.DataFrame, written_events: pd.DataFrame,
                     written_messages: pd.DataFrame) -> pd.DataFrame:
    """True p_click of every eligible message at every decision point, from a plain cross join."""
    pairs = decision_points.reset_index(names="row").merge(
        written_messages[["message_id", "channel", "valid_from", "valid_to"]].astype({"channel": str}),
        how="cross", suffixes=("", "_message"))
    valid = ((pairs["channel"].astype(str) == pairs["channel_message"])
             & (pairs["valid_from"].isna() | (pairs["ts"] >= pairs["valid_from"]))
             & (pairs["valid_to"].isna() | (pairs["ts"] < pairs["valid_to"])))
    pairs = pairs[valid.to_numpy()].reset_index(drop=True)
    p = loaded_truth.response_probabilities(pairs[["customer_id", "message_id", "ts"]], written_events)
    return pd.DataFrame({"row": pairs["row"], "message_id": pairs["message_id"].astype(str),
                         "p_click": p["p_click"].to_numpy()})


def _gain(truth: GroundTruth, points: pd.DataFrame, chosen: pd.Series, events: pd.DataFrame,
          messages: pd.DataFrame) -> float:
    return truth.normalised_gain(points.assign(message_id=chosen.to_numpy()), events, messages, reward="click")


def test_oracle_scores_one_random_zero_popularity_between(
        loaded_truth: GroundTruth, decision_points: pd.DataFrame, candidate_values: pd.DataFrame,
        written_events: pd.DataFrame, written_messages: pd.DataFrame) -> None:
    best = candidate_values.loc[candidate_values.groupby("row")["p_click"].idxmax()].set_index("row")
    assert _gain(loaded_truth, decision_points, best["message_id"].reindex(decision_points.index),
                 written_events, written_messages) == pytest.approx(1.0, abs=1e-12)

    rng = np.random.default_rng(3)
    shuffled = candidate_values.assign(key=rng.random(len(candidate_values))).sort_values("key")
    random_pick = shuffled.groupby("row")["message_id"].first().reindex(decision_points.index)
    assert abs(_gain(loaded_truth, decision_points, random_pick, written_events, written_messages)) < 0.05

    popularity = candidate_values.groupby("message_id")["p_click"].mean()  # same ranking for everyone
    popular = (candidate_values.assign(popularity=candidate_values["message_id"].map(popularity))
               .sort_values("popularity", ascending=False).groupby("row")["message_id"].first()
               .reindex(decision_points.index))
    gain = _gain(loaded_truth, decision_points, popular, written_events, written_messages)
    assert 0.05 < gain < 0.9


def test_policy_values_match_a_loop_and_split_by_channel(
        loaded_truth: GroundTruth, decision_points: pd.DataFrame, candidate_values: pd.DataFrame,
        written_events: pd.DataFrame, written_messages: pd.DataFrame) -> None:
    first = candidate_values.groupby("row")["message_id"].first().reindex(decision_points.index)
    values = loaded_truth.policy_values(decision_points.assign(message_id=first.to_numpy()), written_events,
                                        written_messages, reward="click")
    by_row = candidate_values.groupby("row")["p_click"]
    np.testing.assert_allclose(values["random"], by_row.mean().reindex(decision_points.index), atol=1e-15)
    np.testing.assert_allclose(values["oracle"], by_row.max().reindex(decision_points.index), atol=1e-15)
    assert (values["n_eligible"] == by_row.size().reindex(decision_points.index)).all()
    assert set(values["channel"]) == set(loaded_truth.params.channels)
    assert (values["oracle"] >= values["policy"]).all() and (values["oracle"] >= values["random"]).all()


def test_value_reward_weights_conversion_by_message_value(
        loaded_truth: GroundTruth, decision_points: pd.DataFrame, candidate_values: pd.DataFrame,
        written_events: pd.DataFrame, written_messages: pd.DataFrame) -> None:
    first = candidate_values.groupby("row")["message_id"].first().reindex(decision_points.index)
    decisions = decision_points.assign(message_id=first.to_numpy())
    conversion = loaded_truth.policy_values(decisions, written_events, written_messages, reward="conversion")
    value = loaded_truth.policy_values(decisions, written_events, written_messages, reward="value")
    message_value = written_messages.set_index("message_id")["value"].reindex(first).to_numpy()
    np.testing.assert_allclose(value["policy"], conversion["policy"] * message_value, rtol=1e-12)
    with pytest.raises(ValueError, match="unknown reward 'revenue'"):
        loaded_truth.normalised_gain(decisions, written_events, written_messages, reward="revenue")
