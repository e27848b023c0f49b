"""One offer on several channels through the API: next-best-messages sends it on one channel only, and after
an impression posted on one channel a decision on another holds it back (offer_on_other_channel)."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from serving.app import create_app
from tests.policy.online_world import CUTOFF, HOUR, MESSAGES, build_world
from tests.serving.conftest import settings_for

NOW = CUTOFF + 5 * HOUR
# Offer "trip": e3 by email, s2 by sms (both travel), p1 by push (push's only message).
OFFER_MESSAGES = MESSAGES.assign(offer_id=[None, None, "trip", None, None, None, "trip", None, "trip"])
TRIP = {"e3", "s2", "p1"}
# Travel made irresistible and topics allowed on several channels: only the offer keeps e3 and s2 apart.
TOML = "[policy]\ntopic_levers = { travel = 100.0 }\n[policy.coordination]\nallow_same_topic_across_channels = true\n"


@pytest.fixture(scope="module")
def offer_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("offer-model")
    build_world(root, messages=OFFER_MESSAGES)
    return root


@pytest.fixture
def offer_client(tmp_path, offer_model):
    with TestClient(create_app(settings_for(tmp_path, TOML), model_dir=offer_model, environ={}, clock=lambda: NOW),
                    raise_server_exceptions=False) as client:
        yield client


def test_next_best_messages_sends_an_offer_on_one_channel(offer_client):
    for customer in ("c1", "c3", "c7"):
        answer = offer_client.get(f"/v1/customers/{customer}/next-best-messages")
        assert answer.status_code == 200, answer.text
        decisions = {d["channel"]: d for d in answer.json()["decisions"]}
        served = [m["message_id"] for d in decisions.values() for m in d["messages"]]
        assert len(set(served) & TRIP) == 1, served  # e3 or s2, never both, and never p1 beside them
        assert decisions["push"]["messages"] == [] and decisions["push"]["suppressed"] == {"offer_taken": 1}
        assert len(decisions["email"]["messages"]) == len(decisions["sms"]["messages"]) == 1


def test_an_offer_posted_as_shown_on_one_channel_waits_on_the_others(offer_client):
    before = offer_client.post("/v1/decisions", json={"customer_id": "c5", "channel": "push"}).json()
    assert [m["message_id"] for m in before["messages"]] == ["p1"] and before["suppressed"] == {}
    shown = {"event_id": "imp-1", "ts": (NOW - 3 * HOUR).isoformat().replace("+00:00", "Z"), "customer_id": "c5",
             "event_type": "impression", "channel": "sms", "message_id": "s2"}
    stored = offer_client.post("/v1/events", json={"events": [shown]})
    assert stored.status_code == 200, stored.text
    push = offer_client.post("/v1/decisions", json={"customer_id": "c5", "channel": "push"}).json()
    assert push["messages"] == [] and push["suppressed"] == {"offer_on_other_channel": 1}
    email = offer_client.post("/v1/decisions", json={"customer_id": "c5", "channel": "email", "k": 4}).json()
    assert email["suppressed"] == {"offer_on_other_channel": 1} and "e3" not in [m["message_id"] for m in email["messages"]]
    # Across channels too: the offer shown 3 h ago goes nowhere else now.
    decisions = offer_client.get("/v1/customers/c5/next-best-messages").json()["decisions"]
    assert not {m["message_id"] for d in decisions for m in d["messages"]} & (TRIP - {"s2"})
