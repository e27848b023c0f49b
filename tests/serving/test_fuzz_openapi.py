"""Schemathesis fuzzes every operation of the app's own OpenAPI schema: no 5xx, and every answer (status,
content type, body) is one the schema documents. Keys are set, so /v1 and /admin run behind their checks.

The operations are walked in one test (not ``schema.parametrize()``): the schema comes from an app built on
the session's trained model, and schemathesis' lazy fixture loader does not run on pytest 9.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.python import asgi
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance, status_code_conformance

from tests.serving.conftest import ADMIN_KEY, API_KEY

CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]
EXAMPLES = 50  # per operation and generation mode
FUZZ = settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


@pytest.fixture
def api_schema(make_client):
    client = make_client(environ={"NBM_API_KEYS": API_KEY, "NBM_ADMIN_KEYS": ADMIN_KEY})
    schema = schemathesis.openapi.from_asgi("/openapi.json", client.app)
    yield schema
    asgi.shutdown_lifespans()  # schemathesis starts the app's lifespan itself: close its store before tmp_path goes


@pytest.mark.slow
def test_every_operation_answers_as_documented(api_schema):
    operations = [result.ok() for result in api_schema.get_all_operations()]
    assert len(operations) >= 8, [op.label for op in operations]
    failures = []
    for operation in operations:
        key = ADMIN_KEY if operation.path.startswith("/admin") else API_KEY
        # An operation without parameters or body has nothing to make invalid.
        negatable = any(True for _ in operation.iter_parameters()) or len(operation.body) > 0
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if negatable else (GenerationMode.POSITIVE,):

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def answers_as_documented(case):
                case.call_and_validate(headers={"X-API-Key": key}, checks=CHECKS)

            try:
                answers_as_documented()
            except (Exception, BaseExceptionGroup) as exc:  # every operation is fuzzed before the test fails; all failures are shown
                failures.append(f"{operation.label} ({mode.value}): {exc}")
    assert not failures, "\n\n".join(failures)


# What the fuzzer found, pinned: instants outside pandas' nanosecond range (1677-2262) were 500s.
@pytest.mark.parametrize("as_of", ["0740-12-09T02:46:06+13:36", "6093-09-22T15:15:05Z"])
def test_as_of_outside_the_nanosecond_range_is_a_422(client, as_of):
    single = client.post("/v1/decisions", json={"customer_id": "c1", "channel": "email", "as_of": as_of})
    customer = client.get("/v1/customers/c1/next-best-messages", params={"as_of": as_of})
    for answer, where in ((single, "body"), (customer, "query")):
        assert answer.status_code == 422, answer.text
        assert answer.json()["detail"][0]["loc"] == [where, "as_of"]
    events = client.post("/v1/events", json={"events": [{"event_id": "e", "ts": as_of, "customer_id": "c1", "event_type": "visit"}]})
    assert events.status_code == 422
    assert [(p["column"], p["reason"]) for p in events.json()["detail"]] == [("ts", "bad_timestamp")]
