"""API keys, body limits, request ids, structured logs, and the last-resort 500."""

from __future__ import annotations

import json
import logging

import pytest

from engine.errors import ConfigError
from serving.app import create_app
from serving.logs import JsonFormatter
from serving.middleware import _RequestIds
from tests.serving.conftest import ADMIN_KEY, API_KEY, settings_for

DECISION = {"customer_id": "c1", "channel": "email"}


@pytest.fixture
def secured(make_client):
    return make_client(environ={"NBM_API_KEYS": f"{API_KEY},second-api-key-0000"})


@pytest.mark.parametrize("route", ["/v1/model", "/v1/customers/c1/next-best-messages"])
def test_without_keys_v1_is_open(client, route):
    assert client.get(route).status_code == 200


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "missing X-API-Key header: this server requires an API key"),
    ({"X-API-Key": ""}, "missing X-API-Key header: this server requires an API key"),
    ({"X-API-Key": API_KEY[:-1]}, "invalid X-API-Key"),
    ({"X-API-Key": ADMIN_KEY}, "invalid X-API-Key"),
])
def test_with_keys_every_v1_route_needs_one(secured, headers, message):
    calls = [("post", "/v1/decisions", DECISION), ("post", "/v1/decisions/batch", {"requests": [DECISION]}),
             ("get", "/v1/customers/c1/next-best-messages", None), ("post", "/v1/events", {"events": [{}]}),
             ("get", "/v1/model", None)]
    for method, route, body in calls:
        answer = secured.request(method, route, json=body, headers=headers)
        assert answer.status_code == 401, route
        assert answer.json()["detail"] == message


def test_with_keys_any_configured_key_works_and_probes_stay_open(secured):
    assert secured.post("/v1/decisions", json=DECISION, headers={"X-API-Key": API_KEY}).status_code == 200
    assert secured.post("/v1/decisions", json=DECISION, headers={"X-API-Key": "second-api-key-0000"}).status_code == 200
    for probe in ("/healthz", "/readyz", "/metrics"):
        assert secured.get(probe).status_code == 200


def test_auth_is_checked_before_the_body(secured):
    assert secured.post("/v1/decisions", json={"nonsense": True}).status_code == 401


def test_keys_from_the_file_work_and_the_environment_wins(make_client):
    client = make_client(f'[serving]\napi_keys = ["{API_KEY}"]\n')
    assert client.get("/v1/model").status_code == 401
    assert client.get("/v1/model", headers={"X-API-Key": API_KEY}).status_code == 200
    overridden = make_client(f'[serving]\napi_keys = ["{API_KEY}"]\n', environ={"NBM_API_KEYS": "from-the-environment-0"})
    assert overridden.get("/v1/model", headers={"X-API-Key": API_KEY}).status_code == 401


@pytest.mark.parametrize("keys", ["tiny", "has a space inside it", "tab\tinside-a-long-key"])
def test_weak_keys_are_refused_at_startup_without_showing_them(tmp_path, keys):
    with pytest.raises(ConfigError) as caught:
        create_app(settings_for(tmp_path), environ={"NBM_ADMIN_KEYS": f"{ADMIN_KEY},{keys}"})
    assert str(caught.value).startswith("NBM_ADMIN_KEYS: key 2 is too short or has spaces, commas or control characters;")
    assert keys not in str(caught.value)


def test_keys_never_reach_the_log(secured, caplog):
    with caplog.at_level(logging.DEBUG, logger="nbm"):
        secured.post("/v1/decisions", json=DECISION, headers={"X-API-Key": API_KEY})
        secured.post("/v1/decisions", json=DECISION, headers={"X-API-Key": "guessed-key-000000"})
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert lines and not any(API_KEY in line or "guessed-key" in line for line in lines)


def test_a_body_over_the_limit_gets_413_from_its_length_or_while_streaming(make_client):
    client = make_client("[serving]\nmax_body_bytes = 2048\n")
    big = {"events": [{"event_id": f"e{i}", "padding": "x" * 100} for i in range(30)]}
    answer = client.post("/v1/events", json=big)
    assert answer.status_code == 413
    assert answer.json() == {"detail": "request body larger than 2,048 bytes ([serving] max_body_bytes)"}
    assert answer.headers["x-request-id"]

    def chunks():  # no Content-Length: Transfer-Encoding chunked
        yield b'{"events": ['
        for i in range(30):
            yield json.dumps({"event_id": f"e{i}", "padding": "x" * 100}).encode() + b","
        yield b'{}]}'

    streamed = client.post("/v1/events", content=chunks(), headers={"content-type": "application/json"})
    assert streamed.status_code == 413
    assert 'nbm_http_requests_total{method="POST",route="/v1/events",status="413"} 2.0' in client.get("/metrics").text
    assert client.post("/v1/decisions", json=DECISION).status_code == 200  # small bodies still pass


def test_request_ids_are_echoed_or_made(client):
    assert client.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"] == "abc-123"
    made = client.get("/healthz", headers={"X-Request-ID": "no spaces allowed"}).headers["x-request-id"]
    assert made != "no spaces allowed" and len(made) == 32
    assert len(client.get("/healthz").headers["x-request-id"]) == 32
    made = {client.get("/healthz").headers["x-request-id"] for _ in range(50)}
    assert len(made) == 50 and all(len(i) == 32 and int(i, 16) >= 0 for i in made)
    # Each worker process (each middleware) draws its own prefix: ids stay unique across workers.
    assert _RequestIds()()[:16] != _RequestIds()()[:16]


def test_unknown_routes_and_methods_get_404_and_405(client):
    assert client.get("/v1/nothing").status_code == 404
    assert client.get("/v1/decisions").status_code == 405


class _Exploding:
    model_version = "boom"

    def decide_each(self, *args, **kwargs):
        raise RuntimeError("secret internal detail")


def test_an_unexpected_error_is_a_generic_500_with_the_traceback_in_the_log_only(make_client, caplog):
    client = make_client(engine_factory=lambda bundle: _Exploding())
    with caplog.at_level(logging.INFO, logger="nbm"):
        answer = client.post("/v1/decisions", json=DECISION, headers={"X-Request-ID": "req-500"})
    assert answer.status_code == 500
    assert answer.json() == {"detail": "internal error; the server log has the details under this request id", "request_id": "req-500"}
    assert "secret" not in answer.text
    errors = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0]["request_id"] == "req-500" and "RuntimeError: secret internal detail" in errors[0]["traceback"]
    access = [json.loads(JsonFormatter().format(r)) for r in caplog.records if r.name == "nbm.serving.access"]
    assert access[-1]["status"] == 500 and access[-1]["route"] == "/v1/decisions"


LOG_KEY = "log-key-for-tests-0123456789"


def test_customer_ids_are_hashed_in_logs_with_the_key_when_configured(make_client, caplog):
    client = make_client(f'[serving]\nhash_customer_ids_in_logs = true\nlog_customer_id_key = "{LOG_KEY}"\n')
    with caplog.at_level(logging.DEBUG, logger="nbm"):
        client.post("/v1/decisions", json={"customer_id": "alice@example.com", "channel": "email"})
        client.get("/v1/customers/alice@example.com/next-best-messages")
    lines = [JsonFormatter().format(r) for r in caplog.records]
    assert not any("alice" in line for line in lines)
    access = [json.loads(line) for line in lines if '"nbm.serving.access"' in line]
    # printf %s alice@example.com | openssl dgst -sha256 -hmac log-key-for-tests-0123456789
    assert [a["customer"] for a in access] == ["hmac:3f6de3b63130282d"] * 2


def test_the_log_hash_is_hmac_sha256_of_the_id_under_the_key():
    from pydantic import SecretStr

    from serving.logs import customer_for_log

    # printf %s c1 | openssl dgst -sha256 -hmac another-secret-key-16
    assert customer_for_log("c1", SecretStr("another-secret-key-16")) == "hmac:e5332615756bb561"
    assert customer_for_log("c1", None) == "c1"


@pytest.mark.parametrize(("toml", "message"), [
    ("hash_customer_ids_in_logs = true\n", "serving: Value error, hash_customer_ids_in_logs needs a secret log_customer_id_key "
                                           "(at least 16 characters; environment: NBM_SERVING__LOG_CUSTOMER_ID_KEY)"),
    ('hash_customer_ids_in_logs = true\nlog_customer_id_key = "short"\n',
     "serving: Value error, log_customer_id_key must have at least 16 characters"),
])
def test_hashing_without_a_usable_key_is_refused_when_the_settings_load(tmp_path, toml, message):
    with pytest.raises(ConfigError) as refused:
        settings_for(tmp_path, "[serving]\n" + toml)
    assert message in str(refused.value) and "short\"" not in str(refused.value)


def test_the_log_key_is_a_secret_in_the_echoed_settings(tmp_path):
    settings = settings_for(tmp_path, f'[serving]\nhash_customer_ids_in_logs = true\nlog_customer_id_key = "{LOG_KEY}"\n')
    assert LOG_KEY not in json.dumps(settings.model_dump(mode="json"))


def test_customer_ids_are_plain_in_logs_by_default(client, caplog):
    with caplog.at_level(logging.INFO, logger="nbm"):
        client.post("/v1/decisions", json={"customer_id": "c-plain", "channel": "email"})
    access = [r for r in caplog.records if r.name == "nbm.serving.access"]
    assert access[-1].customer == "c-plain"
