"""POST /v1/events: atomic batches, duplicates, per-event problems, an unavailable store."""

from __future__ import annotations

import pandas as pd
import pytest

from engine.store.interface import StoreUnavailableError
from engine.store.events import SqliteEventStore, store_path


def visit(event_id: str, customer: str = "c-events", **extra) -> dict:
    return {"event_id": event_id, "ts": "2026-06-30T00:00:00Z", "customer_id": customer, "event_type": "visit", **extra}


def stored(tmp_path) -> list[str]:
    with SqliteEventStore(store_path(tmp_path / "home"), read_only=True) as store:
        return [i for chunk in store.export() for i in chunk["event_id"]]


def test_events_are_stored_once_and_retries_are_duplicates(client, tmp_path):
    first = client.post("/v1/events", json={"events": [visit("e1"), visit("e2"), visit("e1")]})
    assert first.status_code == 200, first.text
    assert first.json() == {"stored": 2, "duplicates": 1, "late": 0}
    again = client.post("/v1/events", json={"events": [visit("e2"), visit("e3")]})
    assert again.json() == {"stored": 1, "duplicates": 1, "late": 0}
    assert sorted(stored(tmp_path)) == ["e1", "e2", "e3"]


def test_an_invalid_event_refuses_the_whole_batch_with_every_problem(client, tmp_path):
    events = [
        visit("ok"),
        visit("no-zone", ts="2026-06-30T00:00:00"),
        {"ts": "2026-06-30T00:00:00Z", "customer_id": "c1", "event_type": "visit"},
        "not an object",
        visit("future", ts="2027-01-01T00:00:00Z"),
        visit("x" * 129),
        visit("ctl", customer="c\u00001"),
        visit("bad-message", event_type="click", message_id="m9999"),
    ]
    answer = client.post("/v1/events", json={"events": events})
    assert answer.status_code == 422, answer.text
    problems = {(p["index"], p["column"], p["reason"]) for p in answer.json()["detail"]}
    assert problems == {
        (1, "ts", "naive_ts"),
        (2, "event_id", "missing_event_id"),
        (3, None, "malformed_line"),
        (4, "ts", "future_ts"),
        (5, "event_id", "invalid_id"),
        (6, "customer_id", "invalid_id"),
        (7, "message_id", "unknown_message"),
    }
    by_index = {p["index"]: p for p in answer.json()["detail"]}
    assert by_index[5]["message"] == "event_id is 129 characters long; at most 128"
    assert by_index[6]["message"] == "customer_id has control characters (line breaks, tabs, ...); ids are printable text"
    assert [p["index"] for p in answer.json()["detail"]] == sorted(p["index"] for p in answer.json()["detail"])
    assert stored(tmp_path) == []  # nothing of the batch, not even the valid event


@pytest.mark.parametrize(
    ("body", "message"),
    [({"events": []}, "List should have at least 1 item"), ({}, "Field required"), ({"events": {"a": 1}}, "Input should be a valid list")],
)
def test_a_malformed_events_body_gets_422(client, body, message):
    answer = client.post("/v1/events", json=body)
    assert answer.status_code == 422
    assert message in answer.json()["detail"][0]["msg"]


def test_too_many_events_get_413(make_client):
    client = make_client("[serving]\nmax_batch_size = 2\n")
    answer = client.post("/v1/events", json={"events": [visit("a"), visit("b"), visit("c")]})
    assert answer.status_code == 413
    assert answer.json()["detail"] == "3 events in one request; at most 2 ([serving] max_batch_size)"


def test_a_read_only_store_answers_503_while_decisions_still_work(make_client, tmp_path, bundle_facts):
    path = store_path(tmp_path / "ro")
    SqliteEventStore(path).close()
    # mode=ro is enforced by SQLite itself: read-only even for root, who ignores file permissions.
    client = make_client(store=SqliteEventStore(path, read_only=True))
    answer = client.post("/v1/events", json={"events": [visit("e1")]})
    assert answer.status_code == 503
    assert answer.headers["retry-after"] == "5"
    assert answer.json()["detail"].startswith(f"event store {path}: cannot store the batch: read-only")
    decision = client.post("/v1/decisions", json={"customer_id": bundle_facts["customer"], "channel": "email"})
    assert decision.status_code == 200 and len(decision.json()["messages"]) == 1


class _FailingLog:
    def append(self, decisions, decided_at):
        raise StoreUnavailableError("cannot log the decisions: disk full", path="events.db")

    def close(self):
        pass


def test_a_decision_that_cannot_be_logged_is_still_served_and_counted(make_client, bundle_facts):
    client = make_client(decision_log=_FailingLog())
    decision = client.post("/v1/decisions", json={"customer_id": bundle_facts["customer"], "channel": "web"})
    assert decision.status_code == 200
    assert "nbm_decision_log_failures_total 1.0" in client.get("/metrics").text


def test_events_change_the_next_decision(client, bundle_facts):
    customer = bundle_facts["customer"]
    as_of = bundle_facts["now"]
    first = client.post("/v1/decisions", json={"customer_id": customer, "channel": "push"}).json()
    unsubscribe = {"event_id": "u1", "ts": (as_of - pd.Timedelta(minutes=5)).isoformat(), "customer_id": customer,
                   "event_type": "unsubscribe", "channel": "push"}
    assert client.post("/v1/events", json={"events": [unsubscribe]}).json() == {"stored": 1, "duplicates": 0, "late": 0}
    after = client.post("/v1/decisions", json={"customer_id": customer, "channel": "push"}).json()
    assert first["messages"] and after["messages"] == []
    assert set(after["suppressed"]) == {"consent"}
