"""The simulated tables follow the data contract and the logging policy's own rules."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.contract.schema import CUSTOMERS, EVENT_TYPES, EVENTS, JOURNEY_STAGES, MESSAGES, OUTCOME_EVENT_TYPES
from engine.simulate import SimulatedWorld, SimulationParams
from engine.simulate.world import start_ns


def _of_type(events: pd.DataFrame, *types: str) -> pd.DataFrame:
    return events[events["event_type"].isin(types).to_numpy()]


def test_tables_have_the_contract_columns(small_world: SimulatedWorld) -> None:
    for spec, frame in ((MESSAGES, small_world.messages), (CUSTOMERS, small_world.customers),
                        (EVENTS, small_world.events)):
        assert set(spec.required) <= set(frame.columns), spec.name
    assert set(EVENTS.optional) <= set(small_world.events.columns)
    assert {"journey_stage", "value", "valid_from", "valid_to", "offer_type", "is_promotional"} <= set(
        small_world.messages.columns)
    assert {"segment", "age_band", "region", "signup_date"} <= set(small_world.customers.columns)


def test_events_are_keyed_sorted_and_in_the_window(written_events: pd.DataFrame,
                                                  small_params: SimulationParams) -> None:
    events = written_events
    assert events["event_id"].is_unique
    assert set(events["event_type"].astype(str)) == set(EVENT_TYPES)
    ordered = events.sort_values(["ts", "event_id"], kind="stable")
    assert (ordered.index == events.index).all()
    assert str(events["ts"].dt.tz) == "UTC"
    # Before the simulated days come only the marking events of stages entered earlier (test_stage_milestones).
    earlier = events["ts"] < pd.Timestamp(start_ns(small_params), tz="UTC")
    assert earlier.any() and set(events.loc[earlier, "event_type"].astype(str)) == {"visit", "purchase"}
    assert events["ts"].max() < pd.Timestamp(small_params.end)


def test_columns_are_null_where_not_applicable(written_events: pd.DataFrame) -> None:
    events = written_events
    decided = events["event_type"].isin(["impression", *OUTCOME_EVENT_TYPES]).to_numpy()
    assert events.loc[decided, "decision_id"].notna().all()
    assert events.loc[~decided, "decision_id"].isna().all()
    impression = (events["event_type"] == "impression").to_numpy()
    assert events.loc[impression, "propensity"].notna().all()
    assert events.loc[~impression, "propensity"].isna().all()
    assert events.loc[impression, "decision_id"].is_unique
    for kind in ("support", "survey", "purchase", "visit"):
        assert _of_type(events, kind)["message_id"].isna().all(), kind
    assert _of_type(events, "unsubscribe")["channel"].notna().all()
    complaints = _of_type(events, "complaint")
    assert complaints["message_id"].notna().any() and complaints["message_id"].isna().any()


def test_catalog_covers_channels_topics_stages_and_validity(small_world: SimulatedWorld,
                                                            small_params: SimulationParams) -> None:
    messages = small_world.messages
    assert messages["message_id"].is_unique and len(messages) == small_params.messages
    pairs = set(zip(messages["channel"], messages["topic"]))
    assert pairs == {(c, t) for c in small_params.channels for t in small_params.topics}
    assert set(messages["journey_stage"]) == set(JOURNEY_STAGES)
    assert (messages["value"] >= 0).all()
    start = pd.Timestamp(start_ns(small_params), tz="UTC")
    assert (messages["valid_to"] < pd.Timestamp(small_params.end)).any()  # some expire before the end
    assert (messages["valid_from"] > start).any()  # some start later
    assert (messages["valid_from"].isna() & messages["valid_to"].isna()).mean() > 0.5  # most are open-ended
    assert set(messages["offer_type"]) == {"discount", "content", "reminder"}


def test_customers_have_attributes_and_utc_signups(small_world: SimulatedWorld,
                                                   small_params: SimulationParams) -> None:
    customers = small_world.customers
    assert customers["customer_id"].is_unique and len(customers) == small_params.customers
    assert customers["customer_id"].str.fullmatch(r"c\d{6}").all()
    assert set(customers["segment"]) <= set(small_params.segments)
    assert str(customers["signup_date"].dt.tz) == "UTC"
    assert (customers["signup_date"] < pd.Timestamp(start_ns(small_params), tz="UTC")).all()


def test_outcomes_follow_their_impression(written_events: pd.DataFrame) -> None:
    events = written_events
    impressions = _of_type(events, "impression").set_index("decision_id")
    outcomes = _of_type(events, *OUTCOME_EVENT_TYPES)
    matched = impressions.reindex(outcomes["decision_id"])
    assert matched["ts"].notna().all(), "every outcome names a logged decision"
    assert (outcomes["ts"].to_numpy() >= matched["ts"].to_numpy()).all()
    for column in ("customer_id", "message_id", "channel"):
        assert (outcomes[column].astype(str).to_numpy() == matched[column].astype(str).to_numpy()).all()
    # click implies open and conversion implies click, each no earlier than the step before
    steps = outcomes.pivot(index="decision_id", columns="event_type", values="ts")
    clicked = steps["click"].notna()
    assert steps.loc[clicked, "open"].notna().all()
    assert (steps.loc[clicked, "click"] >= steps.loc[clicked, "open"]).all()
    converted = steps["conversion"].notna()
    assert steps.loc[converted, "click"].notna().all()
    assert (steps.loc[converted, "conversion"] >= steps.loc[converted, "click"]).all()


def test_no_impression_after_an_unsubscribe_on_that_channel(written_events: pd.DataFrame) -> None:
    events = written_events
    quits = _of_type(events, "unsubscribe")
    assert len(quits) > 0
    assert not quits.duplicated(["customer_id", "channel"]).any()
    later = _of_type(events, "impression").merge(quits[["customer_id", "channel", "ts"]],
                                                 on=["customer_id", "channel"], suffixes=("", "_quit"))
    assert len(later) > 0  # the check below compares real pairs
    assert (later["ts"] < later["ts_quit"]).all()


def test_impressions_name_valid_messages_of_their_channel(written_events: pd.DataFrame,
                                                         written_messages: pd.DataFrame) -> None:
    impressions = _of_type(written_events, "impression")
    joined = impressions.merge(written_messages, on="message_id", how="left", suffixes=("", "_message"))
    assert len(joined) == len(impressions)
    assert (joined["channel"].astype(str) == joined["channel_message"].astype(str)).all()
    assert (joined["topic"].astype(str) == joined["topic_message"].astype(str)).all()
    starts_ok = joined["valid_from"].isna() | (joined["valid_from"] <= joined["ts"])
    ends_ok = joined["valid_to"].isna() | (joined["ts"] < joined["valid_to"])
    assert (starts_ok & ends_ok).all()
    propensity = impressions["propensity"]
    assert ((propensity > 0) & (propensity <= 1)).all()
    # a customer gets at most one message per channel per day
    day = impressions["ts"].dt.floor("D")
    per_day = pd.DataFrame({"c": impressions["customer_id"], "ch": impressions["channel"], "d": day})
    assert not per_day.duplicated().any()


def test_event_values(written_events: pd.DataFrame, written_messages: pd.DataFrame) -> None:
    surveys = _of_type(written_events, "survey")["value"]
    assert surveys.between(0, 10).all() and (surveys == np.round(surveys)).all() and surveys.nunique() > 3
    assert (_of_type(written_events, "purchase")["value"] > 0).all()
    conversions = _of_type(written_events, "conversion")
    value = written_messages.set_index("message_id")["value"].reindex(conversions["message_id"].astype(str))
    assert np.allclose(conversions["value"].to_numpy(), value.to_numpy())
    visits = _of_type(written_events, "visit")
    assert visits["topic"].notna().all() and set(visits["channel"].astype(str)) == {"web", "app"}
