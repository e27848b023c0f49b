"""POST /v1/decisions and /v1/decisions/batch on the real engine and a trained bundle."""

from __future__ import annotations

import threading

import pandas as pd
import pytest

from engine.store.decisions import SqliteDecisionLog
from engine.store.events import store_path


def test_a_decision_returns_the_best_messages_with_reasons(client, bundle_facts):
    customer = bundle_facts["customer"]
    answer = client.post("/v1/decisions", json={"customer_id": customer, "channel": "email", "k": 3, "explain": True})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert set(body) == {"decision_id", "customer_id", "channel", "as_of", "model_version", "cold_start", "messages", "suppressed",
                         "displaced"}
    assert body["displaced"] is None  # one channel: nothing to lose to
    assert (body["customer_id"], body["channel"], body["model_version"], body["cold_start"]) == (customer, "email", "1", False)
    assert pd.Timestamp(body["as_of"]) == bundle_facts["now"]  # the server's clock, read once
    messages = body["messages"]
    assert len(messages) == 3 and len({m["message_id"] for m in messages}) == 3
    catalog = bundle_facts["messages"].set_index("message_id")
    assert all(catalog.loc[m["message_id"], "channel"] == "email" for m in messages)
    assert [m["score"] for m in messages] == sorted((m["score"] for m in messages), reverse=True)
    assert all(m["propensity"] == 1.0 and m["reasons"] for m in messages)  # greedy by default; explained
    reason = messages[0]["reasons"][0]
    assert set(reason) == {"feature", "label", "contribution", "value", "text"}
    assert reason["text"].startswith(reason["label"] + ": ") and reason["text"].endswith("the score)")
    assert answer.headers["x-request-id"]


def test_without_explain_there_are_no_reasons_and_as_of_is_honoured(client, bundle_facts):
    as_of = (bundle_facts["now"] + pd.Timedelta(days=2)).isoformat()
    body = client.post("/v1/decisions", json={"customer_id": "new-customer", "channel": "SMS ", "as_of": as_of}).json()
    assert body["channel"] == "sms" and body["cold_start"] is True  # channels are trimmed and lower-cased
    assert pd.Timestamp(body["as_of"]) == pd.Timestamp(as_of)
    assert len(body["messages"]) == 1 and body["messages"][0]["reasons"] == []


@pytest.mark.parametrize(
    ("change", "location", "message"),
    [
        ({"channel": "fax"}, None, "channel 'fax' has no message in the model's catalog; channels: app, email, push, sms, web"),
        ({"as_of": "2020-01-01T00:00:00Z"}, None, "as_of must be at or after the feature state's cutoff"),
        ({"as_of": "2026-07-01T00:00:00"}, ["body", "as_of"], "Input should have timezone info"),
        ({"k": 0}, ["body", "k"], "Input should be greater than or equal to 1"),
        ({"k": 21}, ["body", "k"], "Input should be less than or equal to 20"),
        ({"customer_id": ""}, ["body", "customer_id"], "String should have at least 1 character"),
        ({"customer_id": "c" * 129}, ["body", "customer_id"], "String should have at most 128 characters"),
        ({"customer_id": "c1\n"}, None, None),  # trimmed like ids in files: fine
        ({"customer_id": "c\x001"}, ["body", "customer_id"], "must be printable text"),
        ({"customer_id": 42}, ["body", "customer_id"], "Input should be a valid string"),
        ({"chanel": "email"}, ["body", "chanel"], "Extra inputs are not permitted"),
    ],
)
def test_bad_decision_requests_get_422_with_a_clear_message(client, change, location, message):
    answer = client.post("/v1/decisions", json={"customer_id": "c1", "channel": "email", **change})
    if message is None:
        assert answer.status_code == 200
        return
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"]
    if location is None:
        assert message in detail
    else:
        assert any(d["loc"] == location and message in d["msg"] for d in detail), detail
        assert all("input" not in d for d in detail)  # the payload is never echoed back


def test_a_request_that_is_not_json_gets_422(client):
    answer = client.post("/v1/decisions", content=b"{not json", headers={"content-type": "application/json"})
    assert answer.status_code == 422
    assert answer.json()["detail"][0]["type"] == "json_invalid"


def test_a_batch_answers_in_request_order(client, bundle_facts):
    requests = [{"customer_id": bundle_facts["customer"], "channel": c} for c in bundle_facts["channels"]]
    answer = client.post("/v1/decisions/batch", json={"requests": requests})
    assert answer.status_code == 200, answer.text
    decisions = answer.json()["decisions"]
    assert [d["channel"] for d in decisions] == bundle_facts["channels"]
    assert len({d["decision_id"] for d in decisions}) == len(decisions)


def test_a_batch_with_a_bad_request_names_it_and_serves_nothing(client, tmp_path):
    requests = [{"customer_id": "c1", "channel": "email"}, {"customer_id": "c1", "channel": "fax"}]
    answer = client.post("/v1/decisions/batch", json={"requests": requests})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("requests[1]: channel 'fax' has no message")
    with SqliteDecisionLog(store_path(tmp_path / "home"), read_only=True) as log:
        assert log.count() == 0


def test_a_batch_of_one_still_names_the_request(client):
    answer = client.post("/v1/decisions/batch", json={"requests": [{"customer_id": "c1", "channel": "fax"}]})
    assert answer.status_code == 422 and answer.json()["detail"].startswith("requests[0]: channel 'fax'")


def test_a_batch_over_the_limit_gets_413_and_an_empty_one_422(make_client):
    client = make_client("[serving]\nmax_batch_size = 2\n")
    answer = client.post("/v1/decisions/batch", json={"requests": [{"customer_id": "c1", "channel": "email"}] * 3})
    assert answer.status_code == 413
    assert answer.json()["detail"] == "3 decision requests in one batch; at most 2 ([serving] max_batch_size)"
    empty = client.post("/v1/decisions/batch", json={"requests": []})
    assert empty.status_code == 422 and "at least 1 item" in empty.json()["detail"][0]["msg"]


def test_every_decision_is_logged_with_its_candidates(client, tmp_path, bundle_facts):
    single = client.post("/v1/decisions", json={"customer_id": bundle_facts["customer"], "channel": "email", "k": 2}).json()
    client.post("/v1/decisions/batch", json={"requests": [{"customer_id": "c1", "channel": "web"}, {"customer_id": "c2", "channel": "app"}]})
    with SqliteDecisionLog(store_path(tmp_path / "home"), read_only=True) as log:
        assert log.count() == 3
        rows = pd.concat(list(log.since(None)))
    mine = rows[rows["decision_id"] == single["decision_id"]]
    emails = bundle_facts["messages"]["channel"].eq("email").sum()
    assert len(single["messages"]) < len(mine) <= emails  # every eligible email candidate, with score and propensity
    assert mine["score"].notna().all() and mine["propensity"].notna().all()
    assert (mine["model_version"] == "1").all() and (mine["customer_id"] == bundle_facts["customer"]).all()
    served = mine.dropna(subset=["served_rank"]).sort_values("served_rank")
    assert served["message_id"].tolist() == [m["message_id"] for m in single["messages"]]
    assert served["score"].tolist() == pytest.approx([m["score"] for m in single["messages"]])
    assert (mine["decided_at"] == bundle_facts["now"]).all()


class _HeldLog:
    """A decision log whose appends wait until the test releases them."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.appended: list[str] = []

    def append(self, decisions, decided_at):
        assert self.release.wait(30)
        self.appended += [d.decision_id for d in decisions]
        return len(decisions)

    def close(self):
        pass


def test_a_decision_is_answered_once_it_is_counted_and_in_the_decision_log(make_client, bundle_facts):
    held = _HeldLog()
    client = make_client(decision_log=held)
    answers: list = []
    asking = threading.Thread(target=lambda: answers.append(
        client.post("/v1/decisions", json={"customer_id": bundle_facts["customer"], "channel": "email"})))
    asking.start()
    asking.join(0.5)
    assert asking.is_alive() and answers == []  # the log write is held: no answer yet
    held.release.set()
    asking.join(30)
    assert answers[0].status_code == 200
    assert held.appended == [answers[0].json()["decision_id"]]
    assert 'nbm_decisions_total{channel="email"} 1.0' in client.get("/metrics").text


def test_concurrent_decisions_are_each_answered_logged_and_counted(client, tmp_path, bundle_facts):
    customers = [f"c{i}" for i in range(1, 13)]
    answers: dict[str, dict] = {}

    def decide(customer: str) -> None:
        reply = client.post("/v1/decisions", json={"customer_id": customer, "channel": "email"})
        answers[customer] = {"status": reply.status_code, **reply.json()}

    threads = [threading.Thread(target=decide, args=(c,)) for c in customers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert {c: (a["status"], a["customer_id"], a["channel"]) for c, a in answers.items()} == {c: (200, c, "email") for c in customers}
    with SqliteDecisionLog(store_path(tmp_path / "home"), read_only=True) as log:
        rows = pd.concat(list(log.since(None)))
    logged = rows.drop_duplicates("decision_id").set_index("decision_id")["customer_id"].to_dict()
    assert logged == {a["decision_id"]: c for c, a in answers.items()}
    # How the 12 fell into batches depends on timing; that every one was in exactly one batch does not.
    assert "nbm_decision_batch_size_sum 12.0" in client.get("/metrics").text


def test_single_decisions_batches_and_a_customers_channels_are_all_decided_in_the_one_decision_thread(client, bundle_facts):
    request = {"customer_id": bundle_facts["customer"], "channel": bundle_facts["channels"][0]}
    engine = client.app.state.nbm.model().engine
    seen: list[str] = []

    def recording(original):
        def call(*args, **kwargs):
            seen.append(threading.current_thread().name)
            return original(*args, **kwargs)
        return call

    engine.decide_each = recording(engine.decide_each)
    engine.decide_all_channels = recording(engine.decide_all_channels)
    assert client.post("/v1/decisions", json=request).status_code == 200
    assert client.post("/v1/decisions/batch", json={"requests": [request] * 3}).status_code == 200
    assert client.get(f"/v1/customers/{bundle_facts['customer']}/next-best-messages").status_code == 200
    assert len(seen) == 3 and len(set(seen)) == 1 and seen[0].startswith("nbm-decisions")


def test_a_failing_engine_is_a_500_for_its_callers_and_the_next_request_is_served(client, bundle_facts):
    request = {"customer_id": bundle_facts["customer"], "channel": bundle_facts["channels"][0]}
    engine = client.app.state.nbm.model().engine
    decide_each = engine.decide_each

    def broken(inputs):
        engine.decide_each = decide_each  # only this once
        raise RuntimeError("a bug in the engine")

    engine.decide_each = broken
    failed = client.post("/v1/decisions", json=request)
    assert failed.status_code == 500 and "request_id" in failed.json()
    assert client.post("/v1/decisions", json=request).status_code == 200


def test_decision_ids_are_time_ordered_by_the_instant_of_the_decision(client, bundle_facts):
    import uuid

    request = {"customer_id": bundle_facts["customer"], "channel": bundle_facts["channels"][0],
               "as_of": (bundle_facts["cutoff"] + pd.Timedelta(minutes=5)).isoformat()}
    single = client.post("/v1/decisions", json=request).json()["decision_id"]
    batch = [d["decision_id"] for d in client.post("/v1/decisions/batch", json={"requests": [request] * 3}).json()["decisions"]]
    now_ms = bundle_facts["now"].value // 1_000_000  # the server's clock, not the request's as_of
    for decision_id in [single, *batch]:
        assert uuid.UUID(hex=decision_id).version == 7 and int(decision_id[:12], 16) == now_ms
    assert len({single, *batch}) == 4
