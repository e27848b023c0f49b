"""Each stated rate shows up in the generated data within a statistical tolerance (4 standard deviations)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.simulate import SimulatedWorld, SimulationParams, simulate
from engine.simulate.params import DEFAULT_CHANNEL_PARAMS
from engine.simulate.response import ResponseCoefficients, unsubscribe_probability
from engine.simulate.timeline import to_ns
from engine.simulate.world import start_ns

Z = 4.0


def _count(events: pd.DataFrame, kind: str) -> int:
    return int((events["event_type"] == kind).sum())


def _assert_binomial(observed: int, trials: int, rate: float, what: str) -> None:
    expected = trials * rate
    tolerance = Z * np.sqrt(trials * rate * (1 - rate)) + 1
    assert abs(observed - expected) <= tolerance, f"{what}: {observed} vs expected {expected:.1f} +- {tolerance:.1f}"


def _assert_poisson(observed: int, expected: float, what: str) -> None:
    tolerance = Z * np.sqrt(expected) + 1
    assert abs(observed - expected) <= tolerance, f"{what}: {observed} vs expected {expected:.1f} +- {tolerance:.1f}"


@pytest.fixture(scope="module")
def loyal_world() -> SimulatedWorld:
    """No opt-outs, so every customer stays contactable on every channel every day."""
    channels = {name: p.model_copy(update={"unsubscribe_rate": 0.0}) for name, p in DEFAULT_CHANNEL_PARAMS.items()}
    return simulate(SimulationParams(customers=2_000, days=20, seed=5, channel_params=channels))


def _stage_entries_in_period(world: SimulatedWorld, params: SimulationParams) -> np.ndarray:
    """Per stage after awareness: how many customers entered it during the simulated days."""
    entries = world.truth.latents.stage_entry_ns
    return ((entries >= start_ns(params)) & (entries < to_ns(params.end))).sum(axis=0)


def test_organic_rates_per_customer_day(small_world: SimulatedWorld, small_params: SimulationParams) -> None:
    customer_days = small_params.customers * small_params.days
    events = small_world.events
    events = events[events["ts"].array.asi8 >= start_ns(small_params)]  # earlier: milestones of earlier stages
    # Each stage entry adds its one marking event (a visit, or a purchase) on top of the daily rates.
    considering, buying, loyal = _stage_entries_in_period(small_world, small_params)
    assert considering > 0 and buying > 0 and loyal > 0
    _assert_poisson(_count(events, "visit") - considering, small_params.visit_rate * customer_days, "visits")
    _assert_poisson(_count(events, "purchase") - buying - loyal, small_params.purchase_rate * customer_days, "purchases")
    _assert_binomial(_count(events, "survey"), customer_days, small_params.survey_rate, "surveys")
    _assert_binomial(_count(events, "support"), customer_days, small_params.support_rate, "support")
    messageless = int(((events["event_type"] == "complaint") & events["message_id"].isna()).sum())
    _assert_binomial(messageless, customer_days, small_params.complaint_base_rate, "complaints")


def test_contact_rate_per_channel(loyal_world: SimulatedWorld) -> None:
    params = loyal_world.truth.params
    impressions = loyal_world.events[loyal_world.events["event_type"] == "impression"]
    counts = impressions["channel"].astype(str).value_counts()
    for name in params.channels:
        _assert_binomial(int(counts.get(name, 0)), params.customers * params.days,
                         params.channel(name).contact_rate, f"{name} impressions")
    assert _count(loyal_world.events, "unsubscribe") == 0


@pytest.mark.parametrize("outcome", ["open", "click", "conversion"])
def test_outcome_rates_match_the_true_probabilities(small_world: SimulatedWorld, outcome: str) -> None:
    truth = small_world.truth.impressions
    happened = small_world.events.loc[small_world.events["event_type"] == outcome, "decision_id"]
    hit = truth["decision_id"].isin(happened).to_numpy()
    p = truth[f"p_{outcome}"].to_numpy()
    for channel in truth["channel"].astype(str).unique():
        rows = (truth["channel"] == channel).to_numpy()
        expected, sd = p[rows].sum(), np.sqrt((p[rows] * (1 - p[rows])).sum())
        observed = hit[rows].sum()
        assert abs(observed - expected) <= Z * sd + 1, f"{channel} {outcome}: {observed} vs {expected:.1f}"


def test_default_rates_are_realistic(small_world: SimulatedWorld) -> None:
    truth = small_world.truth.impressions
    by_channel = truth.assign(channel=truth["channel"].astype(str)).groupby("channel")[
        ["p_open", "p_click"]].mean()
    assert 0.12 < by_channel.loc["email", "p_open"] < 0.28
    assert 0.06 < by_channel.loc["email", "p_click"] / by_channel.loc["email", "p_open"] < 0.2
    for channel in ("push", "web", "app"):
        assert 0.005 < by_channel.loc[channel, "p_click"] < 0.08, channel


def test_unsubscribes_match_their_probability(small_world: SimulatedWorld) -> None:
    truth = small_world.truth
    impressions = truth.impressions
    channel = pd.Index(truth.params.channels).get_indexer(impressions["channel"].astype(str))
    p = unsubscribe_probability(ResponseCoefficients.from_params(truth.params), channel,
                                impressions["same_topic_exposures"].to_numpy())
    _assert_poisson(_count(small_world.events, "unsubscribe"), p.sum(), "unsubscribes")


def test_surveys_are_lower_after_a_complaint() -> None:
    world = simulate(SimulationParams(customers=600, days=30, seed=9, survey_rate=0.08, complaint_base_rate=0.02))
    events = world.events
    complaints = events[events["event_type"] == "complaint"].groupby("customer_id", observed=True)["ts"].min()
    surveys = events[events["event_type"] == "survey"]
    first_complaint = complaints.reindex(surveys["customer_id"].astype(str)).to_numpy()
    after = pd.notna(first_complaint) & (surveys["ts"].to_numpy() > first_complaint)
    # the penalty lasts 30 days and the whole run is 30 days, so every later survey carries it
    gap = surveys.loc[~after, "value"].mean() - surveys.loc[after, "value"].mean()
    assert after.sum() > 30
    assert gap > 1.5
