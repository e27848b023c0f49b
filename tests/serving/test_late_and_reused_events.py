"""POST /v1/events with events the model's feature cutoff has passed, and with event_ids used before.

Opt-outs and complaints apply whatever their time; other late events are stored and reported as ``late``;
an event_id reused with other content is a conflict (409), never a silent duplicate.
"""

from __future__ import annotations

import pandas as pd

from tests.serving.test_events import stored


def _event(event_id: str, customer: str, kind: str, ts: pd.Timestamp, **extra) -> dict:
    return {"event_id": event_id, "ts": ts.isoformat(), "customer_id": customer, "event_type": kind, **extra}


def _decide(client, customer: str, channel: str) -> dict:
    answer = client.post("/v1/decisions", json={"customer_id": customer, "channel": channel})
    assert answer.status_code == 200, answer.text
    return answer.json()


def _batch(client, customer: str, channels: list[str]) -> list[dict]:
    answer = client.post("/v1/decisions/batch", json={"requests": [{"customer_id": customer, "channel": c} for c in channels]})
    assert answer.status_code == 200, answer.text
    return answer.json()["decisions"]


def _per_channel(client, customer: str) -> dict[str, dict]:
    answer = client.get(f"/v1/customers/{customer}/next-best-messages")
    assert answer.status_code == 200, answer.text
    return {d["channel"]: d for d in answer.json()["decisions"]}


def test_an_unsubscribe_stamped_before_the_cutoff_blocks_its_channel_in_every_decision_route(client, bundle_facts):
    customer, channels = "c-late-optout", bundle_facts["channels"]
    assert all(_decide(client, customer, channel)["messages"] for channel in channels)
    late = _event("u-late", customer, "unsubscribe", bundle_facts["cutoff"] - pd.Timedelta(days=3), channel="email")
    assert client.post("/v1/events", json={"events": [late]}).json() == {"stored": 1, "duplicates": 0, "late": 0}
    single = _decide(client, customer, "email")
    assert single["messages"] == [] and set(single["suppressed"]) == {"consent"}
    in_batch = _batch(client, customer, channels)
    assert [d["messages"] == [] for d in in_batch] == [c == "email" for c in channels]
    all_channels = _per_channel(client, customer)
    assert all_channels["email"]["messages"] == [] and set(all_channels["email"]["suppressed"]) == {"consent"}
    assert all(all_channels[c]["messages"] for c in channels if c != "email")  # other channels unaffected


def test_a_late_complaint_suppresses_from_its_own_time_and_an_expired_one_does_not(make_client, bundle_facts):
    client = make_client("[policy.contact]\ncomplaint_suppression_days = 10\n")
    cutoff, now, channel = bundle_facts["cutoff"], bundle_facts["now"], bundle_facts["channels"][0]
    # 11 days before now: its 10 days of suppression are over, although it arrives only now.
    expired = _event("k-old", "c-old-complaint", "complaint", now - pd.Timedelta(days=11))
    recent = _event("k-new", "c-new-complaint", "complaint", cutoff - pd.Timedelta(days=2))
    assert client.post("/v1/events", json={"events": [expired, recent]}).json() == {"stored": 2, "duplicates": 0, "late": 0}
    assert _decide(client, "c-old-complaint", channel)["messages"]
    suppressed = _decide(client, "c-new-complaint", channel)
    assert suppressed["messages"] == [] and set(suppressed["suppressed"]) == {"complaint_suppression"}
    assert all(d["messages"] == [] for d in _per_channel(client, "c-new-complaint").values())


def test_other_events_before_the_cutoff_are_stored_for_the_export_and_reported_late(client, bundle_facts, tmp_path):
    cutoff, message = bundle_facts["cutoff"], bundle_facts["messages"].iloc[0]
    events = [_event("v-late", "c-late", "visit", cutoff - pd.Timedelta(hours=1), topic="travel"),
              _event("i-late", "c-late", "impression", cutoff - pd.Timedelta(days=1), message_id=message["message_id"]),
              _event("v-live", "c-late", "visit", cutoff, topic="travel")]  # at the cutoff: read by decisions
    assert client.post("/v1/events", json={"events": events}).json() == {"stored": 3, "duplicates": 0, "late": 2}
    assert client.post("/v1/events", json={"events": events}).json() == {"stored": 0, "duplicates": 3, "late": 0}
    assert sorted(stored(tmp_path)) == ["i-late", "v-late", "v-live"]
    assert "nbm_events_late_total 2.0" in client.get("/metrics").text


def test_an_event_id_reused_for_another_customer_is_refused_with_409_and_nothing_of_the_batch_is_stored(client, bundle_facts, tmp_path):
    ts, channel = bundle_facts["now"] - pd.Timedelta(minutes=5), "email"
    first = _event("optout-1", "c-first", "unsubscribe", ts, channel=channel)
    assert client.post("/v1/events", json={"events": [first]}).json() == {"stored": 1, "duplicates": 0, "late": 0}
    assert client.post("/v1/events", json={"events": [first]}).json() == {"stored": 0, "duplicates": 1, "late": 0}
    assert _decide(client, "c-second", channel)["messages"]
    reused = _event("optout-1", "c-second", "unsubscribe", ts, channel=channel)
    answer = client.post("/v1/events", json={"events": [_event("v-1", "c-second", "visit", ts, topic="travel"), reused]})
    assert answer.status_code == 409, answer.text
    assert answer.json() == {"detail": [{
        "index": 1, "column": "event_id", "reason": "conflicting_event_id", "event_id": "optout-1", "differs": ["customer_id"],
        "message": "event_id 'optout-1' is already used by the stored event with other content (customer_id 'c-first' there, "
                   "'c-second' here); only an identical resend is a duplicate: send a new event with a new event_id"}]}
    assert stored(tmp_path) == ["optout-1"]  # not even the visit
    assert 'nbm_events_rejected_total{reason="conflicting_event_id"} 1.0' in client.get("/metrics").text
    # Sent again under a new id, the second customer's opt-out is stored and holds.
    resent = client.post("/v1/events", json={"events": [{**reused, "event_id": "optout-2"}]})
    assert resent.json() == {"stored": 1, "duplicates": 0, "late": 0}
    blocked = _decide(client, "c-second", channel)
    assert blocked["messages"] == [] and set(blocked["suppressed"]) == {"consent"}


def test_a_reused_event_id_within_one_batch_names_both_positions(client, bundle_facts, tmp_path):
    ts = bundle_facts["now"] - pd.Timedelta(minutes=5)
    events = [_event("x", "c-a", "visit", ts, topic="travel"), _event("x", "c-a", "visit", ts, topic="travel"),
              _event("x", "c-a", "visit", ts - pd.Timedelta(seconds=1), topic="travel")]
    answer = client.post("/v1/events", json={"events": events})
    assert answer.status_code == 409
    (problem,) = answer.json()["detail"]
    assert (problem["index"], problem["differs"]) == (2, ["ts"])
    assert problem["message"].startswith("event_id 'x' is already used by event 0 of this batch with other content (ts ")
    assert stored(tmp_path) == []
