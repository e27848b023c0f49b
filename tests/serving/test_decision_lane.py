"""The decision lane (serving/decision_lane.py) answers a well-formed POST /v1/decisions before FastAPI,
with the answer the route gives; every other request reaches the route. Each request goes to two apps:
one with the lane, and one where the lane is taken out. Their answers must be equal (the decision id
aside, which is random). The lane's app also counts the requests that reached the route."""

from __future__ import annotations

import json

import pytest

import serving.app
from serving.decision_lane import DECISIONS_PATH, DecisionLane

API_KEY = "lane-test-api-key-0001"


class _Counting:
    """The app behind the lane (FastAPI), counting the requests it gets."""

    def __init__(self, app) -> None:
        self.app, self.calls = app, 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http":
            self.calls += 1
        await self.app(scope, receive, send)


def _count_behind_the_lane(client) -> _Counting:
    layer = client.app.middleware_stack
    while not isinstance(layer, DecisionLane):
        layer = layer.app
    layer.app = _Counting(layer.app)
    return layer.app


@pytest.fixture
def apps(make_client, tmp_path, monkeypatch):
    """(client with the lane, the count of requests that reached its route, client without the lane)."""
    def pair(environ: dict[str, str] | None = None):
        with_lane = make_client(environ=environ, home=tmp_path / "with-lane")
        route = _count_behind_the_lane(with_lane)
        monkeypatch.setattr(serving.app, "DecisionLane", lambda app: app)  # the lane taken out
        without_lane = make_client(environ=environ, home=tmp_path / "without-lane")
        monkeypatch.undo()
        return with_lane, route, without_lane
    return pair


def _answer(client, body: bytes, headers: dict[str, str]) -> tuple[int, object]:
    answer = client.post("/v1/decisions", content=body, headers=headers)
    try:
        payload = answer.json()
    except ValueError:
        payload = answer.text
    if isinstance(payload, dict):
        payload.pop("decision_id", None)
    return answer.status_code, payload


JSON = {"content-type": "application/json"}


def _well_formed(customer: str) -> list[tuple[str, bytes, dict[str, str]]]:
    def body(**fields) -> bytes:
        return json.dumps({"customer_id": customer, "channel": "email", **fields}).encode()

    return [
        ("known customer", body(), JSON),
        ("k, explain and as_of", body(k=3, explain=True, as_of="2026-07-02T10:00:00+02:00"), JSON),
        ("cold start", json.dumps({"customer_id": "never-seen", "channel": "sms"}).encode(), JSON),
        ("charset parameter", body(), {"content-type": "application/json; charset=utf-8"}),
        ("upper-case type", body(), {"content-type": "Application/JSON"}),
        ("unknown channel: the engine's 422", json.dumps({"customer_id": customer, "channel": "fax"}).encode(), JSON),
        ("as_of before the cutoff: the engine's 422", body(as_of="2020-01-01T00:00:00Z"), JSON),
    ]


def _others(customer: str) -> list[tuple[str, bytes, dict[str, str]]]:
    valid = json.dumps({"customer_id": customer, "channel": "email"}).encode()
    return [
        ("malformed JSON", b"{not json", JSON),
        ("empty body", b"", JSON),
        ("k out of range", json.dumps({"customer_id": customer, "channel": "email", "k": 0}).encode(), JSON),
        ("unknown field", json.dumps({"customer_id": customer, "chanel": "email"}).encode(), JSON),
        ("NaN, which json.loads reads", b'{"customer_id": "c1", "channel": "email", "k": NaN}', JSON),
        ("a byte-order mark", b"\xef\xbb\xbf" + valid, JSON),
        ("UTF-16", valid.decode().encode("utf-16"), JSON),
        ("bytes that are not UTF-8", b'{"customer_id": "c\xff1", "channel": "email"}', JSON),
        ("text/plain", valid, {"content-type": "text/plain"}),
        ("no content type", valid, {}),
        ("a +json type", valid, {"content-type": "application/vnd.nbm+json"}),
    ]


def _edge(customer: str) -> list[tuple[str, bytes, dict[str, str]]]:
    """Where JSON parsers are known to differ; whichever answers, the answer must be the route's."""
    return [
        ("duplicate keys", ('{"customer_id": "someone-else", "customer_id": "%s", "channel": "email"}' % customer).encode(), JSON),
        ("a lone surrogate", b'{"customer_id": "c\\ud800", "channel": "email"}', JSON),
        ("an escaped id", ('{"customer_id": "%s", "channel": "\\u0065mail"}' % customer).encode(), JSON),
        ("a float k", json.dumps({"customer_id": customer, "channel": "email", "k": 2.0}).encode(), JSON),
        ("a huge number", b'{"customer_id": "c1", "channel": "email", "k": 1e400}', JSON),
        ("trailing data", json.dumps({"customer_id": customer, "channel": "email"}).encode() + b" x", JSON),
        ("a raw tab in a string", b'{"customer_id": "c\t1", "channel": "email"}', JSON),
    ]


def test_well_formed_requests_are_answered_by_the_lane_as_the_route_answers_them(apps, bundle_facts):
    with_lane, route, without_lane = apps()
    for name, body, headers in _well_formed(bundle_facts["customer"]):
        expected = _answer(without_lane, body, headers)
        assert _answer(with_lane, body, headers) == expected, name
        assert route.calls == 0, f"{name}: reached the route"
    assert expected[0] == 422  # the last case is an error the engine raised, answered by the lane


def test_every_other_request_reaches_the_route_and_gets_its_answer(apps, bundle_facts):
    with_lane, route, without_lane = apps()
    for reached, (name, body, headers) in enumerate(_others(bundle_facts["customer"]), start=1):
        expected = _answer(without_lane, body, headers)
        assert _answer(with_lane, body, headers) == expected, name
        assert route.calls == reached, f"{name}: answered by the lane"


def test_where_json_parsers_differ_the_answers_are_the_routes(apps, bundle_facts):
    with_lane, _, without_lane = apps()
    for name, body, headers in _edge(bundle_facts["customer"]):
        assert _answer(with_lane, body, headers) == _answer(without_lane, body, headers), name


def test_a_refused_api_key_reaches_the_route_and_a_good_one_is_answered_by_the_lane(apps, bundle_facts):
    with_lane, route, without_lane = apps({"NBM_API_KEYS": API_KEY})
    body = json.dumps({"customer_id": bundle_facts["customer"], "channel": "email"}).encode()
    for headers in (JSON, {**JSON, "X-API-Key": "not-the-key-at-all-00"}):
        expected = _answer(without_lane, body, headers)
        assert expected[0] == 401
        assert _answer(with_lane, body, headers) == expected
    assert route.calls == 2
    keyed = {**JSON, "X-API-Key": API_KEY}
    assert _answer(with_lane, body, keyed) == _answer(without_lane, body, keyed)
    assert route.calls == 2


def test_lane_answers_carry_the_request_id_and_are_counted_and_logged(apps, bundle_facts):
    with_lane, route, _ = apps()
    answer = with_lane.post("/v1/decisions", json={"customer_id": bundle_facts["customer"], "channel": "email"},
                            headers={"X-Request-ID": "lane-request-1"})
    assert answer.status_code == 200 and answer.headers["x-request-id"] == "lane-request-1"
    assert route.calls == 0
    assert with_lane.app.state.nbm.logged()
    assert with_lane.app.state.nbm.decision_log.get().count() == 1
    metrics = with_lane.get("/metrics").text
    assert 'nbm_http_requests_total{method="POST",route="/v1/decisions",status="200"} 1.0' in metrics


def test_the_lane_mirrors_the_routes_parameters():
    # The lane checks the key, reads the body and calls answer_decision itself: a dependency or
    # parameter added to the route would be skipped for the requests the lane answers. Change both.
    from serving.deps import require_api_key
    from serving.routers import decisions

    (route,) = [r for r in decisions.router.routes if r.path == DECISIONS_PATH and "POST" in r.methods]
    dependant = route.dependant
    assert [d.call for d in dependant.dependencies] == [require_api_key]
    assert [p.name for p in dependant.body_params] == ["body"] and dependant.request_param_name == "request"
    assert not (dependant.query_params or dependant.header_params or dependant.cookie_params or dependant.path_params)
