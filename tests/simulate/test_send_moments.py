"""Send-moment worlds: every customer one uniformly random message per send day, per-message attribution
windows that hold every response, data that stops inside the last windows, and the same ground truth."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from engine.simulate import GroundTruth, SimulatedWorld, SimulationParams, simulate, write_world
from engine.simulate.logging_policy import uniform_choice
from engine.simulate.outcomes import windowed_response_times
from engine.simulate.params import DEFAULT_CHANNEL_PARAMS
from engine.simulate.timeline import DAY_NS, MS_NS

CHANNELS = ("email", "web", "app")
SEND_DAYS = (0, 4, 8)


def _params(seed: int = 5, unsubscribe_rate: float = 0.0) -> SimulationParams:
    # High response rates, as in an offer data set, so that every kind of outcome is frequent.
    channel_params = {c: DEFAULT_CHANNEL_PARAMS[c].model_copy(update={
        "open_rate": 0.6, "click_rate": 0.5, "conversion_rate": 0.5, "unsubscribe_rate": unsubscribe_rate})
        for c in CHANNELS}
    return SimulationParams(customers=600, days=11, messages=6, channels=CHANNELS, channel_params=channel_params,
                            topics=("travel", "food"), send_days=SEND_DAYS, attribution_days_range=(2, 6), seed=seed)


@pytest.fixture(scope="module")
def world() -> SimulatedWorld:
    return simulate(_params())


def _impressions(world: SimulatedWorld) -> pd.DataFrame:
    return world.events.loc[world.events["event_type"] == "impression"].astype({"customer_id": str, "message_id": str})


# --- the random campaign ------------------------------------------------------------------------------

def test_uniform_choice_takes_the_kth_eligible_message_with_propensity_one_over_eligible() -> None:
    eligible = np.array([[True, False, True, True],
                         [False, False, False, False],  # nothing eligible: no impression
                         [False, True, False, False],
                         [True, True, True, True]])
    uniform = np.array([0.5, 0.9, 0.99, 0.25])
    rows, message, propensity = uniform_choice(eligible, uniform)
    # row 0: 3 eligible (0, 2, 3), 0.5 * 3 = 1.5 -> the second, message 2; row 2: its only one;
    # row 3: 4 eligible, 0.25 * 4 = 1 -> the second, message 1.
    np.testing.assert_array_equal(rows, [0, 2, 3])
    np.testing.assert_array_equal(message, [2, 1, 1])
    np.testing.assert_allclose(propensity, [1 / 3, 1.0, 1 / 4])


def test_every_customer_gets_exactly_one_impression_on_each_send_day_and_none_otherwise(world: SimulatedWorld) -> None:
    impressions = _impressions(world)
    start = world.truth.params.end - pd.Timedelta(days=world.truth.params.days)
    day = ((impressions["ts"] - start) // pd.Timedelta(days=1)).to_numpy()
    assert sorted(set(day.tolist())) == list(SEND_DAYS)
    per_customer_day = pd.crosstab(impressions["customer_id"].to_numpy(), day)
    assert per_customer_day.shape == (600, len(SEND_DAYS))
    assert (per_customer_day.to_numpy() == 1).all()


def test_without_opt_outs_the_propensity_is_one_over_the_catalog_and_every_message_is_sent(world: SimulatedWorld) -> None:
    impressions = _impressions(world)
    np.testing.assert_allclose(impressions["propensity"].to_numpy(), 1 / 6)
    counts = impressions["message_id"].value_counts()
    assert len(counts) == 6
    # uniform: each message's share of the 1,800 sends is 1/6 within 4 standard errors
    share = counts.to_numpy() / len(impressions)
    assert np.abs(share - 1 / 6).max() < 4 * np.sqrt(1 / 6 * 5 / 6 / len(impressions))


def test_an_opted_out_channel_is_left_out_and_the_propensity_counts_what_remains() -> None:
    world = simulate(_params(seed=9, unsubscribe_rate=0.3))
    events, messages = world.events, world.messages.astype({"message_id": str, "channel": str})
    impressions = _impressions(world)
    unsubscribes = events.loc[events["event_type"] == "unsubscribe", ["customer_id", "channel", "ts"]].astype(
        {"customer_id": str, "channel": str})
    assert len(unsubscribes) > 50
    per_channel = messages["channel"].value_counts()
    checked = 0
    for row in impressions.sample(300, random_state=0).itertuples():
        # an opt-out counts from the day after it (today's contact has already happened)
        gone = unsubscribes.loc[(unsubscribes["customer_id"] == row.customer_id)
                                & (unsubscribes["ts"] < row.ts.floor("D")), "channel"].unique()
        assert str(row.channel) not in gone
        eligible = len(messages) - per_channel.reindex(gone).fillna(0).sum()
        assert row.propensity == pytest.approx(1 / eligible)
        checked += len(gone) > 0
    assert checked > 5  # the check above met customers with opt-outs


# --- attribution windows and the end of the data ------------------------------------------------------

def test_windowed_times_stay_inside_the_window_and_keep_their_order() -> None:
    day = DAY_NS
    ts = np.array([0, 0, 10 * MS_NS], dtype=np.int64)
    window = np.array([3 * day, 3 * day, 1 * day], dtype=np.int64)
    open_ms = np.array([1_000, 1_000, 2 * 86_400_000])  # the third open would fall after its 1-day window
    click_ms = np.array([500, 500, 10])
    u = np.array([0.0, 0.5, 0.5])
    open_ts, click_ts, conversion_ts = windowed_response_times(ts, window, open_ms, click_ms, u)
    last = ts + window - MS_NS
    np.testing.assert_array_equal(open_ts, [1_000 * MS_NS, 1_000 * MS_NS, last[2]])
    np.testing.assert_array_equal(click_ts, [1_500 * MS_NS, 1_500 * MS_NS, last[2]])
    # u = 0: at the click; u = 0.5: half way from the click to the window's last millisecond
    room_ms = (last[1] - click_ts[1]) // MS_NS
    np.testing.assert_array_equal(conversion_ts, [click_ts[0], click_ts[1] + (room_ms // 2) * MS_NS, last[2]])


def test_responses_fall_inside_their_message_window_and_before_the_end(world: SimulatedWorld) -> None:
    events = world.events
    windows = world.messages.set_index(world.messages["message_id"].astype(str))["attribution_days"]
    assert windows.between(2, 6).all() and windows.nunique() > 1
    impressions = _impressions(world).set_index("decision_id")
    end = world.truth.params.end
    for kind in ("open", "click", "conversion"):
        outcomes = events.loc[events["event_type"] == kind]
        sent = impressions.loc[outcomes["decision_id"].to_numpy()]
        lag = outcomes["ts"].to_numpy() - sent["ts"].to_numpy()
        window = pd.to_timedelta(windows.loc[sent["message_id"].to_numpy()].to_numpy(), unit="D")
        assert (lag >= pd.Timedelta(0)).all() and (lag < window).all(), kind
        assert (outcomes["ts"] < end).all()
    conversions = events.loc[events["event_type"] == "conversion"]
    lag_days = (conversions["ts"].to_numpy() - impressions.loc[conversions["decision_id"].to_numpy(), "ts"].to_numpy()) / pd.Timedelta(days=1)
    assert lag_days.max() > 2.0  # spread over the windows, not all within the first day and a half


def test_the_data_stops_inside_the_last_windows_and_drops_what_comes_later(world: SimulatedWorld) -> None:
    # The last send (day 8) has 3 days left before the end; windows of 4 to 6 days are cut short. Over
    # the impressions whose window closed before the end, conversions match the true probability; over
    # the last send's long-window impressions, fewer conversions are in the data than the truth has.
    truth = world.truth.impressions.astype({"message_id": str})
    windows = world.messages.set_index(world.messages["message_id"].astype(str))["attribution_days"]
    closes = truth["ts"] + pd.to_timedelta(windows.loc[truth["message_id"]].to_numpy(), unit="D")
    converted = truth["decision_id"].isin(world.events.loc[world.events["event_type"] == "conversion", "decision_id"])
    closed = (closes <= world.truth.params.end).to_numpy()
    cut = ~closed
    assert closed.sum() > 1_000 and cut.sum() > 100
    expected, seen = truth.loc[closed, "p_conversion"].sum(), converted[closed].sum()
    spread = np.sqrt((truth.loc[closed, "p_conversion"] * (1 - truth.loc[closed, "p_conversion"])).sum())
    assert abs(seen - expected) < 4 * spread
    assert converted[cut].sum() < truth.loc[cut, "p_conversion"].sum() - 4 * np.sqrt(truth.loc[cut, "p_conversion"].sum())


# --- reproducible, and the ground truth still answers -------------------------------------------------

def test_same_seed_gives_the_same_world_and_another_seed_another(world: SimulatedWorld) -> None:
    again = simulate(_params())
    for name in ("messages", "customers", "events"):
        pd.testing.assert_frame_equal(getattr(world, name), getattr(again, name))
    other = simulate(_params(seed=6))
    columns = ["ts", "customer_id", "message_id"]
    assert not _impressions(world)[columns].reset_index(drop=True).equals(_impressions(other)[columns].reset_index(drop=True))


def test_ground_truth_recomputes_the_sampled_probabilities_and_keeps_the_windows(world: SimulatedWorld, tmp_path: Path) -> None:
    loaded = GroundTruth.load(write_world(world, tmp_path) / "ground_truth")
    np.testing.assert_array_equal(loaded.catalog.attribution_days, world.messages["attribution_days"].to_numpy())
    logged = loaded.impressions
    recomputed = loaded.response_probabilities(logged[["customer_id", "message_id", "ts"]], world.events)
    columns = ["p_open", "p_click", "p_conversion"]
    np.testing.assert_allclose(recomputed[columns].to_numpy(), logged[columns].to_numpy(), rtol=0, atol=1e-12)
    assert logged["times_shown"].max() >= 1  # the same offer again at a later send lowers the response


# --- parameters ---------------------------------------------------------------------------------------

@pytest.mark.parametrize(("update", "message"), [
    ({"send_days": (0, 11)}, r"within 0\.\.10"),
    ({"send_days": (4, 0)}, "unique, ascending"),
    ({"messages": 2}, r"max\(channels, topics\) = 3"),
    ({"attribution_days_range": (5, 3)}, "1 <= low <= high"),
    ({"channels": ("email", "web"), "channel_params": {c: DEFAULT_CHANNEL_PARAMS[c] for c in ("email", "web")}},
     "must include web and app"),
])
def test_inconsistent_send_moment_params_are_rejected(update: dict, message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        SimulationParams.model_validate(_params().model_dump() | update)


def test_a_few_messages_and_topics_need_send_days() -> None:
    daily = _params().model_dump() | {"send_days": ()}
    with pytest.raises(ValidationError, match="topics: need at least 8, got 2 \\(fewer only with send_days\\)"):
        SimulationParams.model_validate(daily)
    with pytest.raises(ValidationError, match="messages: need at least 40 for the daily logging policy, got 6"):
        SimulationParams.model_validate(daily | {"topics": tuple("abcdefgh")})
