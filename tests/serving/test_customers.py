"""GET /v1/customers/{customer_id}/next-best-messages: one coordinated decision per channel."""

from __future__ import annotations

import pandas as pd
import pytest


def test_one_decision_per_channel_with_distinct_topics(client, bundle_facts):
    customer = bundle_facts["customer"]
    answer = client.get(f"/v1/customers/{customer}/next-best-messages", params={"explain": "true"})
    assert answer.status_code == 200, answer.text
    body = answer.json()
    assert body["customer_id"] == customer and body["model_version"] == "1"
    assert sorted(d["channel"] for d in body["decisions"]) == bundle_facts["channels"]
    served = [m for d in body["decisions"] for m in d["messages"]]
    assert served and all(len(d["messages"]) <= 1 for d in body["decisions"])
    assert len({m["topic"] for m in served}) == len(served)  # one channel per topic by default
    assert all(m["reasons"] for m in served)
    serves = {d["channel"]: d["messages"][0]["message_id"] for d in body["decisions"] if d["messages"]}
    for lost in (d["displaced"] for d in body["decisions"] if d["displaced"]):  # what it lost to is served there
        assert lost["reason"] in ("topic_taken", "offer_taken") and serves[lost["by_channel"]] == lost["by_message_id"]
    assert all(pd.Timestamp(d["as_of"]) == bundle_facts["now"] for d in body["decisions"])


def test_as_of_in_the_query(client, bundle_facts):
    as_of = (bundle_facts["now"] + pd.Timedelta(days=1)).isoformat()
    body = client.get("/v1/customers/c-new/next-best-messages", params={"as_of": as_of}).json()
    assert all(pd.Timestamp(d["as_of"]) == pd.Timestamp(as_of) and d["cold_start"] for d in body["decisions"])


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/v1/customers/c1/next-best-messages", {"as_of": "2026-07-01T00:00:00"}, "Input should have timezone info"),
        ("/v1/customers/c1/next-best-messages", {"as_of": "yesterday"}, "Input should be a valid datetime"),
        ("/v1/customers/c1/next-best-messages", {"explain": "maybe"}, "Input should be a valid boolean"),
        ("/v1/customers/" + "c" * 129 + "/next-best-messages", {}, "String should have at most 128 characters"),
        ("/v1/customers/c%0A1/next-best-messages", {}, "must be printable text"),
    ],
)
def test_bad_customer_requests_get_422(client, path, params, message):
    answer = client.get(path, params=params)
    assert answer.status_code == 422, answer.text
    assert message in answer.json()["detail"][0]["msg"]


def test_the_customer_id_is_trimmed_as_in_the_body(client):
    assert client.get("/v1/customers/%20c-trim%20/next-best-messages").json()["customer_id"] == "c-trim"


def test_a_stale_as_of_gets_422(client):
    answer = client.get("/v1/customers/c1/next-best-messages", params={"as_of": "2020-01-01T00:00:00Z"})
    assert answer.status_code == 422
    assert answer.json()["detail"].startswith("as_of must be at or after the feature state's cutoff")


def test_the_decision_ids_are_time_ordered_by_the_server_clock(client, bundle_facts):
    import uuid

    body = client.get(f"/v1/customers/{bundle_facts['customer']}/next-best-messages").json()
    ids = [d["decision_id"] for d in body["decisions"]]
    now_ms = bundle_facts["now"].value // 1_000_000
    assert len(set(ids)) == len(ids) == len(bundle_facts["channels"])
    assert all(uuid.UUID(hex=i).version == 7 and int(i[:12], 16) == now_ms for i in ids)


def test_some_channels_only_in_any_case(client, bundle_facts):
    customer = bundle_facts["customer"]
    first, second = bundle_facts["channels"][:2]
    for params in ({"channels": [second.upper(), first]}, {"channels": f"{first},{second.title()}"}):
        answer = client.get(f"/v1/customers/{customer}/next-best-messages", params=params)
        assert answer.status_code == 200, answer.text
        assert [d["channel"] for d in answer.json()["decisions"]] == sorted([first, second])


def test_an_unknown_query_parameter_or_channel_is_refused_not_ignored(client, bundle_facts):
    customer = bundle_facts["customer"]
    answer = client.get(f"/v1/customers/{customer}/next-best-messages", params={"explian": "true", "as_of": "2026-01-01T00:00:00Z"})
    assert answer.status_code == 422
    assert answer.json()["detail"] == [{"loc": ["query", "explian"], "type": "extra_forbidden",
                                        "msg": "unknown query parameter; known: as_of, channels, explain"}]
    answer = client.get(f"/v1/customers/{customer}/next-best-messages", params={"channels": "fax"})
    assert answer.status_code == 422 and "channel 'fax' has no message in the model's catalog" in answer.text


def test_served_messages_carry_their_catalog_row_and_the_catalog_is_listed(client, bundle_facts):
    catalog = bundle_facts["messages"].set_index("message_id")
    listed = client.get("/v1/messages")
    assert listed.status_code == 200, listed.text
    rows = {row["message_id"]: row for row in listed.json()["messages"]}
    assert sorted(rows) == sorted(catalog.index)
    body = client.get(f"/v1/customers/{bundle_facts['customer']}/next-best-messages").json()
    served = [m for d in body["decisions"] for m in d["messages"]]
    assert served
    for message in served:
        row = message["catalog"]
        assert row == rows[message["message_id"]]
        assert (row["channel"], row["topic"]) == (catalog.loc[message["message_id"], "channel"], message["topic"])
        assert set(catalog.columns) <= set(row)  # every column of the catalog, extra ones included
