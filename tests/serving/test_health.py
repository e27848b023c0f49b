"""/healthz, /readyz, /metrics and /v1/model."""

from __future__ import annotations

import pandas as pd



def test_healthz_and_readyz_when_ready(client):
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ready", "model_version": "1", "store": "ok", "last_reload_error": None, "reasons": []}


def test_without_a_model_readyz_is_503_with_the_reason_and_decisions_503(make_client, tmp_path):
    empty = tmp_path / "empty-model"
    empty.mkdir()
    client = make_client(model_dir=empty)
    assert client.get("/healthz").status_code == 200  # alive, just not ready
    ready = client.get("/readyz")
    assert ready.status_code == 503
    reason = f"no model loaded: {empty}: no model bundle here (no 'current'); run nbm train first"
    assert ready.json()["reasons"] == [reason] and ready.json()["model_version"] is None
    decision = client.post("/v1/decisions", json={"customer_id": "c1", "channel": "email"})
    assert decision.status_code == 503 and decision.json()["detail"] == reason
    assert client.post("/v1/events", json={"events": [{"event_id": "e"}]}).status_code == 503
    assert client.get("/v1/model").status_code == 503


def test_readyz_reports_an_unavailable_store_and_decisions_answer_503(make_client, tmp_path):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where the home directory should be")
    client = make_client(home=blocker / "home")  # cannot be created, for root too
    ready = client.get("/readyz")
    assert ready.status_code == 503
    assert ready.json()["store"] == f"event store {blocker / 'home' / 'events.db'}: cannot create its directory: Not a directory"
    assert ready.json()["model_version"] == "1" and ready.json()["reasons"] == [ready.json()["store"]]
    decision = client.post("/v1/decisions", json={"customer_id": "c1", "channel": "email"})
    assert decision.status_code == 503 and decision.json()["detail"] == ready.json()["store"]


def test_model_info_comes_from_the_bundle_metadata(client, bundle_facts):
    info = client.get("/v1/model").json()
    assert info["model_version"] == "1" and info["model_name"] == "nbm-ranker" and info["promoted"] is True
    assert info["objective"] == "binary" and info["gate"].startswith("promoted")
    assert pd.Timestamp(info["feature_cutoff"]) >= bundle_facts["cutoff"]
    assert pd.Timestamp(info["data_start"]) < pd.Timestamp(info["data_end"])
    assert "ndcg@3" in info["metrics"] and 0 < info["metrics"]["ndcg@3"] <= 1
    assert info["bundle"].startswith("bundle-")
    assert info["predictor"] == "lleaves"  # training compiled the model into the bundle
    assert info["features"] == "numba"  # the default [serving] feature_interpreter


def test_metrics_count_requests_decisions_suppressions_events_and_reloads(client, bundle_facts):
    customer = bundle_facts["customer"]
    served = client.post("/v1/decisions", json={"customer_id": customer, "channel": "email"}).json()["messages"][0]
    client.post("/v1/events", json={"events": [{"event_id": "u", "ts": bundle_facts["cutoff"].isoformat(), "customer_id": customer,
                                                "event_type": "unsubscribe", "channel": "email"}]})
    client.post("/v1/events", json={"events": [{"event_id": "u", "ts": bundle_facts["cutoff"].isoformat(), "customer_id": customer,
                                                "event_type": "unsubscribe", "channel": "email"}]})
    client.post("/v1/events", json={"events": [{"event_id": "bad"}]})
    client.post("/v1/decisions", json={"customer_id": customer, "channel": "email"})
    client.post("/v1/decisions", json={"customer_id": customer, "channel": "fax"})
    client.get(f"/v1/customers/{customer}/next-best-messages")
    text = client.get("/metrics").text
    for line in (
        'nbm_http_requests_total{method="POST",route="/v1/decisions",status="200"} 2.0',
        'nbm_http_requests_total{method="POST",route="/v1/decisions",status="422"} 1.0',
        'nbm_http_requests_total{method="GET",route="/v1/customers/{customer_id}/next-best-messages",status="200"} 1.0',
        'nbm_http_request_duration_seconds_count{method="POST",route="/v1/events",status="200"} 2.0',
        f'nbm_messages_served_total{{channel="email",message_id="{served["message_id"]}"}} 1.0',
        'nbm_events_total{outcome="stored"} 1.0',
        'nbm_events_total{outcome="duplicate"} 1.0',
        'nbm_events_rejected_total{reason="missing_ts"} 1.0',
        'nbm_model_reloads_total{outcome="ok"} 1.0',
        'nbm_model_info{version="1"} 1.0',
    ):
        assert line in text, line
    assert 'nbm_decisions_total{channel="email"} 3.0' in text  # two single ones and one from the customer route
    assert 'nbm_suppressions_total{rule="consent"}' in text



def test_openapi_documents_every_route_and_the_api_key(client):
    spec = client.get("/openapi.json").json()
    assert {"/v1/decisions", "/v1/decisions/batch", "/v1/customers/{customer_id}/next-best-messages", "/v1/events",
            "/v1/model", "/admin/reload", "/healthz", "/readyz", "/metrics"} <= set(spec["paths"])
    assert spec["components"]["securitySchemes"]["ApiKey"] == {
        "type": "apiKey", "in": "header", "name": "X-API-Key",
        "description": "One of NBM_API_KEYS for /v1, one of NBM_ADMIN_KEYS for /admin."}
    events = spec["paths"]["/v1/events"]["post"]["responses"]
    assert {"200", "401", "413", "422", "503"} <= set(events)


def test_the_feature_interpreter_setting_chooses_what_computes_the_features(make_client, bundle_facts):
    numba = make_client()
    numpy = make_client("[serving]\nfeature_interpreter = \"numpy\"\n")
    assert (numba.get("/v1/model").json()["features"], numpy.get("/v1/model").json()["features"]) == ("numba", "numpy")
    request = {"customer_id": bundle_facts["customer"], "channel": "email", "k": 3}
    first, second = (c.post("/v1/decisions", json=request).json()["messages"] for c in (numba, numpy))
    assert [(m["message_id"], m["score"]) for m in first] == [(m["message_id"], m["score"]) for m in second]  # the same features
