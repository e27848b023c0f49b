"""The online decision engine on a tiny bundle: no train/serve skew, and the policy sees live events at once."""

from __future__ import annotations


import numpy as np
import pandas as pd
import pytest

from engine.config import ContactSettings, MessageRule, PolicySettings, Settings, StageTargetingSettings
from engine.contract.schema import JOURNEY_STAGES
from engine.store.interface import contract_rows
from engine.policy.online import DecisionEngine, DecisionInput, ModelMismatchError, StaleRequestError, UnknownChannelError
from engine.policy.rules import stage_matrix
from tests.policy.conftest import COSTLY_ROW_FEATURES
from tests.policy.online_world import CUSTOMERS, CUTOFF, HOUR, at


def _engine(world, interpreter: str = "numba", **policy) -> DecisionEngine:
    return DecisionEngine(world.bundle, Settings(policy=PolicySettings(**policy)), interpreter=interpreter)


def _valid(world, channel: str, as_of: pd.Timestamp) -> list[str]:
    messages = world.bundle.messages
    mine = messages[(messages["channel"] == channel) & (messages["valid_from"].isna() | (messages["valid_from"] <= as_of))
                    & (messages["valid_to"].isna() | (as_of < messages["valid_to"]))]
    return mine["message_id"].tolist()


@pytest.mark.parametrize(("customer", "days_after"), [("c3", 0), ("c7", 0), ("c11", 2.5), ("c27", 4), ("heavy", 1), ("old_unsub", 3)])
def test_online_features_equal_the_batch_features_of_the_full_history(online_world, customer, days_after):
    # State (compacted 90 days) + live events since the cutoff == build_features over every event.
    world = online_world
    as_of = CUTOFF + pd.Timedelta(days=days_after)
    live_rows = [at(pd.Timedelta(hours=h), customer, kind, **extra) for h, kind, extra in [
        (1, "impression", {"channel": "email", "message_id": "e2", "topic": "news"}), (2, "click", {"channel": "email", "message_id": "e2"}),
        (5, "purchase", {"value": 42.5}), (30, "visit", {"topic": "travel"}), (60, "impression", {"channel": "sms", "message_id": "s1"}),
        (90, "survey", {"value": 3.0}), (200, "visit", {"topic": "food"})]]
    live = world.live(live_rows)
    everything = pd.concat([world.events, live], ignore_index=True).sort_values("ts", kind="stable", ignore_index=True)
    # The event store hands the engine contract rows rather than a frame: the same events, the same features.
    rows = contract_rows(live.assign(event_id=[f"live-{i}" for i in range(len(live))]))
    engine = _engine(world)
    for channel in engine.channels:
        ids, online = engine.features(customer, channel, as_of=as_of, live_events=live)
        assert list(ids) == _valid(world, channel, as_of)
        batch = world.batch_features(everything, customer, as_of, ids)
        assert online.names == tuple(batch.columns) == world.bundle.feature_names
        np.testing.assert_allclose(online.values, batch.to_numpy(), rtol=1e-9, atol=1e-9)
        np.testing.assert_array_equal(engine.features(customer, channel, as_of=as_of, live_events=rows)[1].values, online.values)


def test_live_events_of_other_customers_or_before_the_cutoff_are_ignored_and_order_does_not_matter(online_world):
    engine = _engine(online_world)
    as_of = CUTOFF + pd.Timedelta(days=1)
    _, alone = engine.features("c3", "email", as_of=as_of, live_events=online_world.live([]))
    noise = online_world.live([at(HOUR, "c4", "visit", topic="deals"), at(-HOUR, "c3", "purchase", value=10.0)])
    _, noisy = engine.features("c3", "email", as_of=as_of, live_events=noise)
    np.testing.assert_array_equal(noisy.values, alone.values)
    noisy_rows = contract_rows(noise.assign(event_id=[f"n{i}" for i in range(len(noise))]))  # as the event store hands them
    np.testing.assert_array_equal(engine.features("c3", "email", as_of=as_of, live_events=noisy_rows)[1].values, alone.values)
    # Live events out of time order give the same features as in order.
    rows = [at(h * HOUR, "c3", kind, topic="deals") for h, kind in ((1, "visit"), (3, "click"), (2, "visit"), (5, "purchase"))]
    ordered = online_world.live(rows)
    shuffled = ordered.iloc[[3, 0, 2, 1]].reset_index(drop=True)
    np.testing.assert_array_equal(engine.features("c3", "email", as_of=as_of, live_events=shuffled)[1].values,
                                  engine.features("c3", "email", as_of=as_of, live_events=ordered)[1].values)


def test_a_live_unsubscribe_blocks_the_channel_strictly_after_it(online_world):
    engine = _engine(online_world)
    live = online_world.live([at(HOUR, "c3", "unsubscribe", channel="sms")])
    n = len(_valid(online_world, "sms", CUTOFF + HOUR))
    blocked = engine.decide("c3", "sms", as_of=CUTOFF + 2 * HOUR, live_events=live)
    assert blocked.messages == () and blocked.suppressed == {"consent": n} and blocked.candidates == ()
    assert engine.decide("c3", "sms", as_of=CUTOFF + HOUR, live_events=live).messages  # at the same instant: not yet
    assert engine.decide("c3", "email", as_of=CUTOFF + 2 * HOUR, live_events=live).messages  # other channels unaffected


def test_an_unsubscribe_compacted_in_the_state_still_blocks(online_world):
    state = online_world.bundle.state.log
    mine = state.customer == state.customers.index("old_unsub")
    assert state.ts[mine].max() < CUTOFF.value - 30 * 86_400 * 10**9  # all of it is compacted history
    decision = _engine(online_world).decide("old_unsub", "sms", as_of=CUTOFF, live_events=online_world.live([]))
    assert decision.messages == () and decision.suppressed == {"consent": 3}


def test_live_impressions_count_toward_the_daily_cap(online_world):
    engine = _engine(online_world, contact=ContactSettings(channel_daily_cap=2, complaint_suppression_days=0))
    day = pd.Timedelta(days=2)  # clear of the impressions c5 had before the cutoff
    shown = [at(day + h * HOUR, "c5", "impression", channel="email", message_id="e2") for h in (1, 2)]
    as_of = CUTOFF + day + 3 * HOUR
    assert engine.decide("c5", "email", as_of=as_of, live_events=online_world.live(shown[:1])).messages
    capped = engine.decide("c5", "email", as_of=as_of, live_events=online_world.live(shown))
    assert capped.messages == () and capped.suppressed == {"channel_daily_cap": 4}
    # 24 h after the first impression it has left the window: one in the day, below the cap.
    assert engine.decide("c5", "email", as_of=CUTOFF + day + 25 * HOUR, live_events=online_world.live(shown)).messages


def test_lifetime_max_counts_compacted_impressions_by_their_weight(online_world):
    # "heavy" saw e1 three times 60-80 days before the cutoff: one compacted record of weight 3.
    state = online_world.bundle.state.log
    assert 3 in state.weight[state.customer == state.customers.index("heavy")]
    engine = _engine(online_world, contact=ContactSettings(lifetime_max=3))
    decision = engine.decide("heavy", "email", k=4, as_of=CUTOFF, live_events=online_world.live([]))
    assert decision.suppressed == {"lifetime_max": 1} and "e1" not in [m.message_id for m in decision.messages]
    assert _engine(online_world, contact=ContactSettings(lifetime_max=4)).decide(
        "heavy", "email", k=4, as_of=CUTOFF, live_events=online_world.live([])).suppressed == {}


def test_a_complaint_suppresses_promotional_topics_for_the_configured_days_only(online_world):
    engine = _engine(online_world, contact=ContactSettings(complaint_suppression_days=2, promotional_topics=("deals", "travel")))
    live = online_world.live([at(HOUR, "c6", "complaint")])
    during = engine.decide("c6", "email", k=5, as_of=CUTOFF + 2 * HOUR, live_events=live)
    assert during.suppressed == {"complaint_suppression": 2}
    assert {m.message_id for m in during.messages} == {"e2", "e4"}  # news and food still flow
    after = engine.decide("c6", "email", k=5, as_of=CUTOFF + HOUR + pd.Timedelta(days=2), live_events=live)
    assert after.suppressed == {} and len(after.messages) == 4


def test_an_unknown_customer_is_a_cold_start_with_profile_free_features(online_world):
    engine = _engine(online_world)
    decision = engine.decide("stranger", "email", as_of=CUTOFF + HOUR, live_events=online_world.live([]))
    assert decision.cold_start and len(decision.messages) == 1 and len(decision.candidates) == 4
    _, features = engine.features("stranger", "email", as_of=CUTOFF + HOUR, live_events=online_world.live([]))
    frame = features.to_frame()
    assert frame["profile_age"].isna().all() and (frame["visit_count_30d"] == 0).all()
    batch = online_world.batch_features(online_world.events, "stranger", CUTOFF + HOUR, ["e1", "e2", "e3", "e4"])
    np.testing.assert_allclose(features.values, batch.to_numpy(), rtol=1e-9, atol=1e-9)
    # Known through the profile only, or through events only: not a cold start.
    assert not engine.decide("profile_only", "email", as_of=CUTOFF, live_events=online_world.live([])).cold_start
    assert not engine.decide("c27", "email", as_of=CUTOFF, live_events=online_world.live([])).cold_start


def test_requests_before_the_cutoff_and_unknown_channels_are_refused(online_world):
    engine = _engine(online_world)
    with pytest.raises(StaleRequestError, match="as_of must be at or after the feature state's cutoff"):
        engine.decide("c1", "email", as_of=CUTOFF - pd.Timedelta(1, "ns"), live_events=online_world.live([]))
    with pytest.raises(UnknownChannelError, match="channel 'fax' has no message in the model's catalog; channels: email, push, sms"):
        engine.decide("c1", "fax", as_of=CUTOFF, live_events=online_world.live([]))
    with pytest.raises(ValueError, match="as_of must carry a time zone"):
        engine.decide("c1", "email", as_of=pd.Timestamp("2026-06-01"), live_events=online_world.live([]))
    with pytest.raises(StaleRequestError):
        engine.decide_all_channels("c1", as_of=CUTOFF - pd.Timedelta(days=1), live_events=online_world.live([]))
    # The same instant shown in another zone: still stale one ns before the cutoff, and at it the same decision.
    with pytest.raises(StaleRequestError):
        engine.decide("c1", "email", as_of=(CUTOFF - pd.Timedelta(1, "ns")).tz_convert("Asia/Tokyo"), live_events=online_world.live([]))
    tokyo = engine.decide("c1", "email", as_of=CUTOFF.tz_convert("Asia/Tokyo"), live_events=online_world.live([]), decision_id="d")
    utc = engine.decide("c1", "email", as_of=CUTOFF, live_events=online_world.live([]), decision_id="d")
    assert tokyo.as_of == utc.as_of and tokyo.candidates == utc.candidates


def test_the_decision_names_the_model_and_the_instant(online_world):
    decision = _engine(online_world).decide("c1", "email", as_of=CUTOFF + HOUR, live_events=online_world.live([]),
                                            decision_id="d-1")
    assert (decision.decision_id, decision.customer_id, decision.channel, decision.model_version) == ("d-1", "c1", "email", "7")
    assert decision.as_of == CUTOFF + HOUR and str(decision.as_of.tz) == "UTC"
    generated = _engine(online_world).decide("c1", "email", as_of=CUTOFF, live_events=online_world.live([]))
    assert len(generated.decision_id) == 32 and int(generated.decision_id, 16) >= 0


@pytest.mark.parametrize("customer", ["c0", "c1", "c3", "c12", "c27", "stranger"])
def test_rules_read_the_inferred_stage_the_profile_and_days_since_purchase(online_world, customer):
    policy = {"stage_targeting": StageTargetingSettings(enabled=True, allowed={"loyalty": ("loyalty",)}),
              "rules": (MessageRule(message_id="e2", attribute_in={"segment": ("gold",)}),
                        MessageRule(topic="travel", min_days_since_purchase=5)),
              "contact": ContactSettings(complaint_suppression_days=0)}  # rules only
    engine = _engine(online_world, **policy)
    decision = engine.decide(customer, "email", k=4, as_of=CUTOFF, live_events=online_world.live([]))
    ids, features = engine.features(customer, "email", as_of=CUTOFF, live_events=online_world.live([]))
    frame = features.to_frame()
    stage, days = int(frame["journey_stage"].iloc[0]), frame["days_since_last_purchase"].iloc[0]
    segment = dict(zip(CUSTOMERS["customer_id"], CUSTOMERS["segment"])).get(customer)
    matrix = stage_matrix(StageTargetingSettings(enabled=True, allowed={"loyalty": ("loyalty",)}))
    catalog = online_world.bundle.messages.set_index("message_id")
    expected = {}
    for message_id in ids:
        message_stage = catalog.loc[message_id, "journey_stage"]
        if pd.notna(message_stage) and not matrix[JOURNEY_STAGES.index(message_stage), stage]:
            reason = "journey_stage"
        elif message_id == "e2" and segment != "gold":
            reason = "attribute_in"
        elif catalog.loc[message_id, "topic"] == "travel" and not (np.isnan(days) or days >= 5):
            reason = "min_days_since_purchase"
        else:
            continue
        expected[reason] = expected.get(reason, 0) + 1
    assert decision.suppressed == expected
    assert len(decision.messages) == len(ids) - sum(expected.values())


@pytest.mark.parametrize(("short_by", "travel_suppressed"), [(pd.Timedelta(nanoseconds=1), True), (pd.Timedelta(0), False)])
def test_a_rule_reads_days_since_purchase_at_full_precision(online_world, short_by, travel_suppressed):
    # The model scores a float32 matrix; one nanosecond short of 5 days is 5.0 in float32 and would pass.
    as_of = CUTOFF + pd.Timedelta(days=6)
    live = online_world.live([at(pd.Timedelta(days=1) + short_by, "c1", "purchase", value=3.0)])
    engine = _engine(online_world, rules=(MessageRule(topic="travel", min_days_since_purchase=5),),
                     contact=ContactSettings(complaint_suppression_days=0))
    _, features = engine.features("c1", "email", as_of=as_of, live_events=live)
    days = features.to_frame()["days_since_last_purchase"].iloc[0]
    assert (days < 5) == travel_suppressed and np.float32(days) == 5.0
    travel = [m for m in _valid(online_world, "email", as_of) if m.startswith("e3")]
    for decide in (lambda: engine.decide("c1", "email", k=4, as_of=as_of, live_events=live),
                   lambda: engine.decide_each([DecisionInput("c1", "email", as_of, live, k=4)])[0],
                   lambda: next(d for d in engine.decide_all_channels("c1", as_of=as_of, live_events=live) if d.channel == "email")):
        decision = decide()
        assert decision.suppressed.get("min_days_since_purchase", 0) == (len(travel) if travel_suppressed else 0)


def _record_history_keys(monkeypatch) -> list[str]:
    """The ``by`` of every count and days_since_last query the numpy interpreter's history answers from now on."""
    from engine.features.history import History

    asked: list[str] = []
    for name in ("count", "days_since_last"):
        original = getattr(History, name)

        def recording(self, *args, _original=original, **kwargs):
            asked.append(kwargs.get("by", "customer"))
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(History, name, recording)
    return asked


@pytest.mark.parametrize(("world", "skipped"), [("online_world", set()), ("blind_world", set(COSTLY_ROW_FEATURES))])
def test_decisions_score_what_the_model_gives_every_feature(world, skipped, request, monkeypatch):
    # Decisions build the features the model splits on (and what rules read), the others may be NaN:
    # scores and explanations must be the model's on the complete matrix (Booster.predict, not the
    # compiled model). The blind world's model never splits on the costly per-row columns: skipped.
    world = request.getfixturevalue(world)
    bundle = world.bundle
    assert set(COSTLY_ROW_FEATURES) - bundle.split_features == skipped
    asked_by = _record_history_keys(monkeypatch)
    as_of = CUTOFF + pd.Timedelta(days=1)
    live = world.live([at(HOUR, "c1", "impression", channel="email", message_id="e1", topic="deals")])
    compiled, families = _engine(world), _engine(world, interpreter="numpy")
    assert (compiled.interpreter, families.interpreter) == ("numba", "numpy")
    for customer in ("c1", "c3", "heavy", "nobody"):
        ids, features = compiled.features(customer, "email", as_of=as_of, live_events=live)
        x = features.values.astype(np.float32)
        for name in skipped:  # the complete matrix has them: the model just does not read them
            assert customer == "nobody" or not np.isnan(x[:, bundle.feature_names.index(name)]).all()
        for engine in (compiled, families):
            asked_by.clear()
            decision = engine.decide(customer, "email", k=2, as_of=as_of, live_events=live, explain=True)
            if engine is families:
                assert ("message" in asked_by) == (not skipped)  # the per-row queries by message: made only when read
            assert decision.candidates.message_id.tolist() == list(ids)
            np.testing.assert_allclose(decision.candidates.score, bundle.booster.predict(x, num_threads=1), rtol=1e-6)
            contrib = bundle.booster.predict(x, pred_contrib=True, num_threads=1)
            assert all(served.reasons for served in decision.messages)
            for served in decision.messages:
                row = contrib[list(ids).index(served.message_id)]
                for reason in served.reasons:
                    assert reason.contribution == pytest.approx(row[bundle.feature_names.index(reason.feature)], rel=1e-6)
                    value = x[list(ids).index(served.message_id), bundle.feature_names.index(reason.feature)]
                    assert reason.value == (None if np.isnan(value) else float(value))  # the value the model read


def test_decisions_taken_together_equal_decisions_taken_one_by_one(online_world):
    engine = _engine(online_world, exploration="epsilon_greedy", exploration_rate=0.3)
    as_of = CUTOFF + pd.Timedelta(days=2)
    live = online_world.live([at(HOUR, "c1", "click", channel="email", message_id="e1"), at(2 * HOUR, "c2", "unsubscribe", channel="sms")])
    inputs = [
        DecisionInput("c1", "email", as_of, live, decision_id="d1", explain=True),
        DecisionInput("c2", "sms", as_of, live, decision_id="d2"),  # unsubscribed: nothing to serve
        DecisionInput("c1", "push", as_of + HOUR, live, k=2, decision_id="d3"),  # the same customer again
        DecisionInput("nobody", "email", as_of, None, decision_id="d4"),  # cold start
        DecisionInput("c3", "fax", as_of, live, decision_id="d5"),  # refused, in its place
        DecisionInput("c3", "email", CUTOFF - HOUR, live, decision_id="d6"),  # refused: before the cutoff
        DecisionInput("profile_only", "email", as_of, live, k=3, decision_id="d7"),
    ]
    together = engine.decide_each(inputs)
    assert isinstance(together[4], UnknownChannelError) and isinstance(together[5], StaleRequestError)
    for request, answer in zip(inputs, together):
        if isinstance(answer, Exception):
            continue
        alone = engine.decide(request.customer_id, request.channel, k=request.k, as_of=request.as_of,
                              live_events=request.live_events, explain=request.explain, decision_id=request.decision_id)
        assert answer == alone
    assert together[1].messages == () and together[1].suppressed == {"consent": len(_valid(online_world, "sms", as_of))}
    assert together[0].messages and together[0].messages[0].reasons  # explained


def test_explanations_and_scores_follow_the_rows_of_messages_a_rule_let_through(online_world):
    # A cooldown refuses the first message for two customers of a batch (the rows after it shift):
    # every served message must carry its own row's score and reasons, not a neighbour's.
    engine = _engine(online_world, contact=ContactSettings(cooldown_days=1.0))
    bundle, as_of = online_world.bundle, CUTOFF + pd.Timedelta(days=1)
    customers = ("c1", "c3", "heavy", "c7")
    shown = [at(HOUR, customer, "impression", channel="email", message_id=message, topic="deals")
             for customer in ("c1", "heavy") for message in _valid(online_world, "email", as_of)[:1]]
    live = online_world.live(shown)
    answers = engine.decide_each([DecisionInput(customer, "email", as_of, live, k=3, decision_id=customer, explain=True)
                                  for customer in customers])
    for customer, decision in zip(customers, answers):
        ids, features = engine.features(customer, "email", as_of=as_of, live_events=live)
        x = features.values.astype(np.float32)
        refused = {e["message_id"] for e in shown if e["customer_id"] == customer}
        assert set(decision.candidates.message_id) == set(ids) - refused
        assert decision.suppressed.get("cooldown", 0) == len(refused)
        row = {message: i for i, message in enumerate(ids)}
        kept = [row[m] for m in decision.candidates.message_id]
        np.testing.assert_allclose(decision.candidates.score, bundle.booster.predict(x[kept], num_threads=1), rtol=1e-6)
        contrib = bundle.booster.predict(x, pred_contrib=True, num_threads=1)
        assert len(decision.messages) == 3
        for served in decision.messages:
            assert served.score == pytest.approx(float(bundle.booster.predict(x[[row[served.message_id]]], num_threads=1)[0]), rel=1e-6)
            for reason in served.reasons:
                assert reason.contribution == pytest.approx(contrib[row[served.message_id], bundle.feature_names.index(reason.feature)], rel=1e-6)
    # One customer on every channel: one matrix for all channels, the refused email row among them.
    for decision in engine.decide_all_channels("c1", as_of=as_of, live_events=live, explain=True):
        ids, features = engine.features("c1", decision.channel, as_of=as_of, live_events=live)
        x = features.values.astype(np.float32)
        contrib = bundle.booster.predict(x, pred_contrib=True, num_threads=1)
        for served in decision.messages:
            at_row = list(ids).index(served.message_id)
            assert served.score == pytest.approx(float(bundle.booster.predict(x[[at_row]], num_threads=1)[0]), rel=1e-6)
            assert served.reasons and all(reason.contribution == pytest.approx(contrib[at_row, bundle.feature_names.index(reason.feature)], rel=1e-6)
                                          for reason in served.reasons)


def test_a_batch_log_holds_each_customers_own_events(online_world):
    from engine.policy.online_state import CustomerStates

    world = online_world
    states = CustomerStates(world.bundle.state, world.spec.vocab, world.bundle.customers)
    late, early = at(3 * HOUR, "c3", "visit", topic="food"), at(HOUR, "c3", "purchase", value=5.0)
    store_rows = contract_rows(world.live([late, early, at(2 * HOUR, "c4", "visit", topic="deals")]).assign(event_id=["a", "b", "c"]))
    lives = [store_rows[::-1],  # out of time order, and another customer's
             None, contract_rows(world.live([at(HOUR, "nobody", "click", channel="email", message_id="e1")]).assign(event_id=["x"])),
             world.live([early]), None, world.live([at(-HOUR, "old_unsub", "visit", topic="news")])]  # before the cutoff: ignored
    ids = ["c3", "heavy", "nobody", "c3", "profile_only", "old_unsub"]
    batch = states.events_of_each(ids, lives)
    assert len(batch) == len(ids) and batch.customer_ids == tuple(ids)
    for i, (customer, live) in enumerate(zip(ids, lives)):
        alone, together = states.events_of(customer, live), batch.one(i)  # the customer in a batch of its own
        assert (together.customer_id, together.known, together.profile) == (alone.customer_id, alone.known, alone.profile)
        for name, values in alone.log.arrays().items():
            np.testing.assert_array_equal(getattr(together.log, name), values, err_msg=f"{customer} {name}")
        rows = slice(batch.bounds[i], batch.bounds[i + 1])
        assert (batch.log.customer[rows] == i).all() and (np.diff(batch.log.ts[rows]) >= 0).all()
    assert batch.bounds[-1] == len(batch.log) and not batch.known[2] and batch.profile[4] >= 0
    # c3's own events: its state, then the two of its live events at or after the cutoff, in time order.
    state = world.bundle.state.log
    own = state.ts[state.customer == state.customers.values.index("c3")]
    c3 = batch.one(0).log
    assert len(c3) == len(own) + 2 and (c3.ts[: len(own)] == own).all()
    assert c3.ts[len(own):].tolist() == [(CUTOFF + HOUR).value, (CUTOFF + 3 * HOUR).value]


def test_a_batch_log_is_each_customers_state_then_its_live_events_stably_in_time_order(online_world):
    # Against a naive reference, per request: the state's rows of its customer, then EventLog.from_events
    # of its own live events at or after the cutoff, in the order given (from_events sorts stably by time).
    from engine.store.interface import contract_frame
    from engine.features.log import EVENT_CODE, EventLog
    from engine.policy.online_state import CustomerStates

    world = online_world
    states = CustomerStates(world.bundle.state, world.spec.vocab, world.bundle.customers)
    events = [at(3 * HOUR, "c3", "visit", topic="food"), at(HOUR, "c3", "purchase", value=5.0),
              at(HOUR, "c3", "click", channel="email", message_id="e1", topic="deals"),  # the purchase's time: a tie
              at(2 * HOUR, "c4", "unsubscribe", channel="sms"), at(-HOUR, "c3", "visit", topic="news"),  # before the cutoff
              at(pd.Timedelta(0), "c4", "visit", topic="food"),  # at the cutoff: live
              at(HOUR, "nobody", "impression", channel="sms", message_id="s1", topic="deals"),
              at(HOUR, "c3", "visit", topic="no such topic")]  # unknown codes are -1
    frame = world.live(events).assign(event_id=[f"x{i}" for i in range(len(events))])
    rows = contract_rows(frame)
    ids = ["c3", "c3", "c3", "c4", "nobody", "heavy", "c3", "c3"]
    lives = [rows, rows[::-1], frame, rows[::-1], rows, None, [], frame.drop(columns=["event_id", "value"])]
    batch = states.events_of_each(ids, lives)
    state = world.bundle.state.log
    for i, (customer, live) in enumerate(zip(ids, lives)):
        code = state.customers.values.index(customer) if customer in state.customers.values else -1
        own_state = {name: values[state.customer == code] for name, values in state.arrays().items()}
        given = live if isinstance(live, pd.DataFrame) else contract_frame(live or [])
        given = given.assign(ts=pd.to_datetime(given["ts"], utc=True))
        mine = given[(given["customer_id"] == customer) & (given["ts"] >= CUTOFF)]
        reference = EventLog.from_events(mine if "value" in mine.columns else mine.assign(value=np.nan), world.spec.vocab).arrays()
        got = batch.one(i).log.arrays()
        n = len(own_state["ts"])
        assert len(got["ts"]) == n + len(reference["ts"])
        for name in ("ts", "event_type", "channel", "topic", "message", "value", "weight"):
            np.testing.assert_array_equal(got[name][:n], own_state[name], err_msg=f"request {i} state {name}")
            np.testing.assert_array_equal(got[name][n:], reference[name], err_msg=f"request {i} live {name}")
    # c3's four live events: the three at one instant in the order given, then the later one.
    purchase, click, visit = EVENT_CODE["purchase"], EVENT_CODE["click"], EVENT_CODE["visit"]
    assert batch.one(0).log.event_type[-4:].tolist() == [purchase, click, visit, visit]
    assert batch.one(1).log.event_type[-4:].tolist() == [visit, click, purchase, visit]
    assert batch.one(0).log.topic[-2] == -1  # the visit of an unknown topic


def test_a_batch_skips_no_check_that_could_fail(online_world):
    # Customers whose contact policy can only allow every candidate skip the per-candidate checks; a cap
    # no one reaches forces them for everyone. The decisions must not change, nor what they suppressed.
    as_of = CUTOFF + pd.Timedelta(days=1)
    live = online_world.live([at(-2 * HOUR + pd.Timedelta(days=1), "c1", "complaint"),  # complained: topics suppressed
                              at(HOUR, "c2", "unsubscribe", channel="push"),  # opted out of another channel
                              at(2 * HOUR, "c5", "unsubscribe", channel="email")])
    customers = ["c0", "c1", "c2", "c5", "c21", "c22", "c23", "c24", "old_unsub", "heavy", "nobody", "profile_only"]
    inputs = [DecisionInput(c, channel, as_of, live, k=2, decision_id=f"{c}-{channel}")
              for c in customers for channel in ("email", "sms", "push")]
    for policy in ({}, {"exploration": "softmax", "exploration_rate": 0.5}):
        quick = _engine(online_world, **policy).decide_each(inputs)
        checked = _engine(online_world, contact=ContactSettings(channel_daily_cap=1000), **policy).decide_each(inputs)
        assert quick == checked
        suppressed = {(d.customer_id, d.channel): d.suppressed for d in quick}
        assert suppressed[("c1", "email")] == {"complaint_suppression": len(_valid(online_world, "email", as_of))}
        assert suppressed[("c5", "email")] == {"consent": len(_valid(online_world, "email", as_of))}
        assert suppressed[("c2", "email")] == {} and quick[customers.index("c2") * 3].messages


def test_greedy_slates_of_a_batch_are_the_top_k_by_priority_ties_to_the_earlier(online_world):
    from engine.policy.exploration import select, slot_distribution

    engine = _engine(online_world)  # priority = the model's probability (a = 1, b = 0, no levers)
    as_of = CUTOFF + pd.Timedelta(days=1)
    inputs = [DecisionInput(f"c{i}", channel, as_of, None, k=3) for i in range(12) for channel in ("email", "sms")]
    for decision in engine.decide_each(inputs):
        score = np.asarray(decision.candidates.score)
        expected = select(score, 3, None).index
        assert [m.message_id for m in decision.messages] == [decision.candidates.message_id[i] for i in expected]
        np.testing.assert_array_equal(decision.candidates.propensity, slot_distribution(score, "none", 0.0, 1.0))
    scores = [tuple(d.candidates.score) for d in engine.decide_each(inputs)]
    assert any(len(set(s)) < len(s) for s in scores)  # ties happen, and go to the earlier candidate


@pytest.mark.parametrize("policy", [{"value_exponent": 1.0, "channel_levers": {"sms": 3.0}, "topic_levers": {"news": 0.25, "deals": 2.0}},
                                    {"propensity_exponent": 2.0, "exploration": "epsilon_greedy", "exploration_rate": 0.4}])
def test_a_batch_weighs_each_requests_candidates_as_a_request_alone_does(online_world, policy):
    engine = _engine(online_world, **policy)
    as_of = CUTOFF + pd.Timedelta(days=1)
    inputs = [DecisionInput(c, channel, as_of + i * HOUR, None, k=2, decision_id=f"d{i}-{channel}")
              for i, c in enumerate(["c0", "c4", "heavy", "nobody", "c7"]) for channel in ("sms", "email", "push")]
    together = engine.decide_each(inputs)
    alone = [engine.decide_each([request])[0] for request in inputs]
    assert together == alone
    assert len({d.messages[0].message_id for d in together if d.messages}) > 3


def _busy_batch(world) -> list[DecisionInput]:
    as_of = CUTOFF + pd.Timedelta(days=1)
    live = world.live([at(HOUR, "c1", "click", channel="email", message_id="e1"), at(2 * HOUR, "heavy", "purchase", value=42.5),
                       at(3 * HOUR, "c4", "survey", value=9.0), at(4 * HOUR, "c4", "visit", topic="travel")])
    return [DecisionInput(c, channel, as_of + i * HOUR, live, k=2, decision_id=f"d{i}-{channel}")
            for i, c in enumerate(["c1", "c4", "heavy", "nobody", "old_unsub"]) for channel in ("sms", "email", "push")]


def test_the_engine_decides_with_either_interpreter_alike(online_world):
    inputs = _busy_batch(online_world)
    compiled = _engine(online_world).decide_each(inputs)
    assert _engine(online_world, interpreter="numpy").decide_each(inputs) == compiled
    assert sum(len(d.candidates.score) for d in compiled) > 20


def test_a_model_reading_features_this_nbm_does_not_define_is_refused_at_load(online_world):
    from dataclasses import replace

    renamed = replace(online_world.bundle, feature_names=(*online_world.bundle.feature_names[:-1], "msg_favourite_colour"))
    with pytest.raises(ModelMismatchError, match=r"needs features this nbm does not define \(missing \['msg_favourite_colour'\]\)"):
        DecisionEngine(renamed, Settings())
