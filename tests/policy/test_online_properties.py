"""Properties of the online decision engine over any live history: what it serves obeys the contact policy.

Hypothesis writes a customer's live events after the bundle's cutoff (impressions of catalog messages on
their channels, unsubscribes, complaints, at increasing times) and picks the instant of the decision; a
plain loop over the customer's whole history (bundle events plus live ones) then checks every served
message with the rules of ``engine/policy/contact.py``'s docstring: only events strictly before ``as_of``
count, and a window of W covers ``as_of - W < ts < as_of``.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.config import ContactSettings, PolicySettings, Settings
from engine.policy.online import Decision, DecisionEngine
from tests.policy.online_world import CUTOFF, MESSAGES, OnlineWorld, at

CONTACT = ContactSettings(channel_daily_cap=2, channel_weekly_cap=4, global_daily_cap=3, cooldown_days=1, lifetime_max=3,
                          complaint_suppression_days=7, promotional_topics=None)
DAY = pd.Timedelta(days=1)
# A customer the bundle never saw, quiet ones with history, "heavy" (compacted impressions of e1),
# "old_unsub" (a compacted sms opt-out) and customers with complaints and opt-outs before the cutoff.
CUSTOMERS = ("fresh", "c3", "c7", "heavy", "old_unsub", "c21", "c23", "c26")
CHANNEL_OF = dict(zip(MESSAGES["message_id"], MESSAGES["channel"]))
PROPERTY = settings(derandomize=True, max_examples=50, deadline=None)


@pytest.fixture(scope="module")
def engine(online_world: OnlineWorld) -> DecisionEngine:
    return DecisionEngine(online_world.bundle, Settings(policy=PolicySettings(contact=CONTACT)))


# One live event: (minutes after the previous one, what happened). Impressions dominate and often come close
# together, so that the caps, the cooldown and the lifetime limit bind; opt-outs and complaints are rarer.
IMPRESSION = st.sampled_from(sorted(CHANNEL_OF)).map(lambda m: ("impression", {"message_id": m, "channel": CHANNEL_OF[m]}))
OPT_OUT = st.sampled_from(["email", "sms", "push"]).map(lambda c: ("unsubscribe", {"channel": c}))
VISIT, COMPLAINT = st.just(("visit", {"topic": "deals"})), st.just(("complaint", {}))
EVENT = st.tuples(
    st.one_of(st.integers(1, 6 * 60), st.integers(1, 3 * 24 * 60)),
    # Out of 20: 16 impressions, 2 visits, 1 opt-out, 1 complaint.
    st.integers(0, 19).flatmap(lambda r: IMPRESSION if r < 16 else VISIT if r < 18 else OPT_OUT if r < 19 else COMPLAINT),
)
# The decision's instant after one live event (or the cutoff): on it, just before, on or after the end of a
# window (1 day, 7 days), or anywhere in the next 10 days.
EDGES = [pd.Timedelta(0), pd.Timedelta(seconds=1), pd.Timedelta(hours=12), DAY - pd.Timedelta(minutes=1), DAY,
         DAY + pd.Timedelta(seconds=1), 6.5 * DAY, 7 * DAY - pd.Timedelta(minutes=1), 7 * DAY]
AS_OF_SHIFT = st.one_of(st.sampled_from(EDGES), st.integers(0, 10 * 24 * 3600).map(lambda s: pd.Timedelta(seconds=s)))


@dataclass(frozen=True)
class Scenario:
    customer: str
    rows: tuple[dict, ...]  # live events, as dicts for OnlineWorld.live
    as_of: pd.Timestamp


@st.composite
def scenarios(draw) -> Scenario:
    customer = draw(st.sampled_from(CUSTOMERS))
    rows, offsets, offset = [], [pd.Timedelta(0)], pd.Timedelta(0)
    for minutes, (kind, extra) in draw(st.lists(EVENT, max_size=16)):
        offset += pd.Timedelta(minutes=minutes)
        rows.append(at(offset, customer, kind, **extra))
        offsets.append(offset)
    return Scenario(customer, tuple(rows), CUTOFF + draw(st.sampled_from(offsets)) + draw(AS_OF_SHIFT))


def problems(world: OnlineWorld, scenario: Scenario, channel: str, message_id: str) -> list[str]:
    """Why serving ``message_id`` on ``channel`` would break the policy; a slow, obvious loop over every event
    of the customer, before the cutoff (the bundle's, compacted in its state) and after it (live)."""
    as_of = scenario.as_of
    mine = world.events[world.events["customer_id"] == scenario.customer]
    history = [e for e in pd.concat([mine, world.live(list(scenario.rows))]).itertuples() if e.ts < as_of]
    shown = [e for e in history if e.event_type == "impression"]
    day = [e for e in shown if e.ts > as_of - DAY]
    week = [e for e in shown if e.ts > as_of - 7 * DAY]
    same = [e for e in shown if e.message_id == message_id]
    message = MESSAGES.set_index("message_id").loc[message_id]
    found = []
    if message["channel"] != channel:
        found.append(f"on {message['channel']}, not {channel}")
    if not (pd.isna(message["valid_from"]) or message["valid_from"] <= as_of) or not (pd.isna(message["valid_to"]) or as_of < message["valid_to"]):
        found.append(f"not valid at {as_of} ({message['valid_from']} to {message['valid_to']})")
    if any(e.event_type == "unsubscribe" and e.channel == channel for e in history):
        found.append("unsubscribed")
    if any(e.event_type == "complaint" and e.ts > as_of - CONTACT.complaint_suppression_days * DAY for e in history):
        found.append("complaint within the suppression window")
    if len(same) >= CONTACT.lifetime_max:
        found.append(f"shown {len(same)} times already")
    if same and max(e.ts for e in same) > as_of - CONTACT.cooldown_days * DAY:
        found.append(f"cooling down: last shown {max(e.ts for e in same)}")
    if sum(e.channel == channel for e in day) >= CONTACT.channel_daily_cap:
        found.append("channel daily cap")
    if sum(e.channel == channel for e in week) >= CONTACT.channel_weekly_cap:
        found.append("channel weekly cap")
    if len(day) >= CONTACT.global_daily_cap:
        found.append("global daily cap")
    return found


def room(world: OnlineWorld, scenario: Scenario, channel: str | None) -> int:
    """How many more messages the volume caps allow now, on ``channel`` or (None) across channels."""
    as_of = scenario.as_of
    mine = world.events[world.events["customer_id"] == scenario.customer]
    shown = [e for e in pd.concat([mine, world.live(list(scenario.rows))]).itertuples()
             if e.ts < as_of and e.event_type == "impression"]
    day = [e for e in shown if e.ts > as_of - DAY]
    week = [e for e in shown if e.ts > as_of - 7 * DAY]
    left = [CONTACT.global_daily_cap - len(day)]
    if channel is not None:
        left += [CONTACT.channel_daily_cap - sum(e.channel == channel for e in day),
                 CONTACT.channel_weekly_cap - sum(e.channel == channel for e in week)]
    return max(0, min(left))


def allowed(world: OnlineWorld, scenario: Scenario, channel: str) -> list[str]:
    return [m for m in MESSAGES.loc[MESSAGES["channel"] == channel, "message_id"] if not problems(world, scenario, channel, m)]


def assert_policy_kept(world: OnlineWorld, scenario: Scenario, decision: Decision) -> None:
    for served in decision.messages:
        found = problems(world, scenario, decision.channel, served.message_id)
        assert not found, f"served {served.message_id} on {decision.channel} at {scenario.as_of}: {found}"


@given(scenario=scenarios())
@PROPERTY
def test_every_served_message_keeps_the_contact_policy(online_world, engine, scenario):
    live = online_world.live(list(scenario.rows))
    for channel in engine.channels:
        expected = allowed(online_world, scenario, channel)
        best = engine.decide(scenario.customer, channel, k=1, as_of=scenario.as_of, live_events=live, decision_id="property")
        assert_policy_kept(online_world, scenario, best)
        # With k as large as the catalog: only messages the policy allows, as many as the caps leave room
        # for all together (each passing alone is not enough), and none held back beyond that.
        every = engine.decide(scenario.customer, channel, k=len(MESSAGES), as_of=scenario.as_of, live_events=live, decision_id="property")
        assert_policy_kept(online_world, scenario, every)
        assert set(m.message_id for m in every.messages) <= set(expected)
        assert len(every.messages) == min(len(expected), room(online_world, scenario, channel))
        assert [m.message_id for m in best.messages] == [m.message_id for m in every.messages][:1]


@given(scenario=scenarios())
@PROPERTY
def test_every_message_served_across_channels_keeps_the_contact_policy(online_world, engine, scenario):
    live = online_world.live(list(scenario.rows))
    decisions = engine.decide_all_channels(scenario.customer, as_of=scenario.as_of, live_events=live)
    assert [d.channel for d in decisions] == list(engine.channels)
    for decision in decisions:
        assert_policy_kept(online_world, scenario, decision)
    # Served together, the channels' messages fit the global caps together.
    assert sum(len(d.messages) for d in decisions) <= room(online_world, scenario, None)
