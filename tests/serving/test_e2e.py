"""End to end: simulate -> nbm train -> the API -> events change the next decisions -> export the log."""

from __future__ import annotations

import pandas as pd
import pytest

from training.cli import main

pytestmark = pytest.mark.slow


def test_unsubscribes_and_daily_caps_reach_the_next_decision(make_client, bundle_facts, tmp_path):
    # `trained` (conftest) ran `nbm simulate` and `nbm train`; this app serves a copy of that model dir.
    client = make_client("[policy.contact]\nchannel_daily_cap = 2\n")
    customer, now = bundle_facts["customer"], bundle_facts["now"]
    first = client.get(f"/v1/customers/{customer}/next-best-messages").json()["decisions"]
    shown = [d for d in first if d["messages"]]
    assert len(shown) >= 2
    unsubscribed, capped = shown[0], shown[1]

    # The customer got a message on a channel and unsubscribes from it.
    message = unsubscribed["messages"][0]
    events = [
        {"event_id": "imp-1", "ts": (now - pd.Timedelta(minutes=30)).isoformat(), "customer_id": customer,
         "event_type": "impression", "message_id": message["message_id"], "decision_id": unsubscribed["decision_id"],
         "propensity": message["propensity"]},
        {"event_id": "unsub-1", "ts": (now - pd.Timedelta(minutes=10)).isoformat(), "customer_id": customer,
         "event_type": "unsubscribe", "channel": unsubscribed["channel"]},
    ]
    assert client.post("/v1/events", json={"events": events}).json() == {"stored": 2, "duplicates": 0, "late": 0}
    after = client.post("/v1/decisions", json={"customer_id": customer, "channel": unsubscribed["channel"]}).json()
    assert after["messages"] == []
    assert set(after["suppressed"]) == {"consent"} and after["suppressed"]["consent"] > 0

    # Two impressions on another channel within 24 h reach its daily cap of 2.
    for i in range(2):
        served = client.post("/v1/decisions", json={"customer_id": customer, "channel": capped["channel"]}).json()
        assert len(served["messages"]) == 1
        impression = {"event_id": f"cap-{i}", "ts": (now - pd.Timedelta(minutes=5 - i)).isoformat(), "customer_id": customer,
                      "event_type": "impression", "message_id": served["messages"][0]["message_id"],
                      "decision_id": served["decision_id"], "propensity": served["messages"][0]["propensity"]}
        assert client.post("/v1/events", json={"events": [impression]}).json()["stored"] == 1
    blocked = client.post("/v1/decisions", json={"customer_id": customer, "channel": capped["channel"]}).json()
    assert blocked["messages"] == []
    assert "channel_daily_cap" in blocked["suppressed"]
    # The other channels are untouched.
    others = client.get(f"/v1/customers/{customer}/next-best-messages").json()["decisions"]
    assert any(d["messages"] for d in others if d["channel"] not in (unsubscribed["channel"], capped["channel"]))

    # Every decision is in the log, exported for off-policy evaluation.
    out = tmp_path / "decisions.parquet"
    assert main(["export-decisions", "--out", str(out), "--home", str(tmp_path / "home")]) == 0
    log = pd.read_parquet(out)
    assert log["decision_id"].nunique() == len(first) + 1 + 2 + 1 + len(others)
    served_rows = log.dropna(subset=["served_rank"])
    assert unsubscribed["decision_id"] in set(served_rows["decision_id"])
    assert (served_rows["propensity"] > 0).all()
