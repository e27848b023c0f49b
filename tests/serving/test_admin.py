"""POST /admin/reload: keys, atomic swap, a failed load keeps the last good model; the optional poller."""

from __future__ import annotations

import time

import pytest

from tests.serving.conftest import ADMIN_KEY, API_KEY, copy_bundle, point_current

ADMIN = {"X-API-Key": ADMIN_KEY}


@pytest.fixture
def admin_client(make_client):
    return make_client(environ={"NBM_ADMIN_KEYS": f"{ADMIN_KEY}, other-admin-key-0000"})


def version(client) -> str:
    return client.post("/v1/decisions", json={"customer_id": "c1", "channel": "email"}).json()["model_version"]


def test_admin_is_refused_without_configured_admin_keys(make_client):
    client = make_client(environ={"NBM_API_KEYS": API_KEY})
    answer = client.post("/admin/reload", headers={"X-API-Key": API_KEY})  # an API key is no admin key
    assert answer.status_code == 403
    assert answer.json()["detail"] == "admin endpoints are disabled: set NBM_ADMIN_KEYS to enable them"


@pytest.mark.parametrize(("headers", "message"), [
    ({}, "missing X-API-Key header: admin endpoints require an admin key"),
    ({"X-API-Key": "wrong-key-wrong-key"}, "invalid X-API-Key for admin endpoints"),
])
def test_admin_needs_an_admin_key(admin_client, headers, message):
    answer = admin_client.post("/admin/reload", headers=headers)
    assert answer.status_code == 401
    assert answer.json()["detail"] == message


def test_reload_swaps_the_model_between_requests(admin_client, model_dir):
    assert version(admin_client) == "1"
    copy_bundle(model_dir, "2")
    answer = admin_client.post("/admin/reload", headers=ADMIN)
    assert answer.status_code == 200, answer.text
    assert answer.json()["model_version"] == "2" and answer.json()["previous_version"] == "1"
    assert answer.json()["bundle"] == "bundle-copy-v2"
    assert answer.json()["features"] == "numba"
    assert version(admin_client) == "2"
    assert admin_client.get("/v1/model").json()["model_version"] == "2"
    assert 'nbm_model_reloads_total{outcome="ok"} 2.0' in admin_client.get("/metrics").text  # startup + reload
    assert 'nbm_model_info{version="2"} 1.0' in admin_client.get("/metrics").text


def test_reload_from_another_model_dir(admin_client, model_dir, tmp_path):
    import shutil

    other = tmp_path / "other-model"
    shutil.copytree(model_dir, other, symlinks=True)
    copy_bundle(other, "7")
    answer = admin_client.post("/admin/reload", headers=ADMIN, json={"model_dir": str(other)})
    assert answer.status_code == 200 and answer.json()["model_version"] == "7"
    assert admin_client.post("/admin/reload", headers=ADMIN, json={"model_dir": str(other), "x": 1}).status_code == 422


def test_a_corrupt_bundle_keeps_the_old_model_serving_and_readyz_shows_why(admin_client, model_dir):
    broken = copy_bundle(model_dir, "2")
    (broken / "model.txt").write_text("this is not a LightGBM model\n")
    answer = admin_client.post("/admin/reload", headers=ADMIN)
    assert answer.status_code == 422
    detail = answer.json()["detail"]
    assert detail.startswith(f"{broken}: cannot load the bundle:") and detail.endswith("; still serving version 1")
    assert version(admin_client) == "1"
    ready = admin_client.get("/readyz")
    assert ready.status_code == 200  # a model is serving
    assert ready.json()["model_version"] == "1"
    assert ready.json()["last_reload_error"].startswith(f"{broken}: cannot load the bundle:")
    assert 'nbm_model_reloads_total{outcome="failed"} 1.0' in admin_client.get("/metrics").text
    (broken / "metadata.json").unlink()
    incomplete = admin_client.post("/admin/reload", headers=ADMIN)
    assert incomplete.status_code == 422
    assert incomplete.json()["detail"] == f"{broken}: incomplete bundle, missing metadata.json; still serving version 1"


def test_a_missing_model_dir_in_reload_is_a_clear_422(admin_client, tmp_path):
    answer = admin_client.post("/admin/reload", headers=ADMIN, json={"model_dir": str(tmp_path / "nowhere")})
    assert answer.status_code == 422
    assert answer.json()["detail"] == (f"{tmp_path / 'nowhere'}: no model bundle here (no 'current'); run nbm train first; "
                                       "still serving version 1")


def test_the_poller_loads_a_new_current_bundle_and_skips_a_broken_one(make_client, model_dir):
    client = make_client("[serving]\nreload_poll_seconds = 0.05\n")
    first = (model_dir / "current").resolve()
    broken = copy_bundle(model_dir, "2")
    (broken / "spec.json").write_text("{")
    _wait(lambda: client.get("/readyz").json()["last_reload_error"] is not None)
    assert version(client) == "1"
    copy_bundle(model_dir, "3", source=first)
    _wait(lambda: version(client) == "3")
    assert client.get("/readyz").json()["last_reload_error"] is None
    point_current(model_dir, first)  # a rollback is a reload too
    _wait(lambda: version(client) == "1")


def _wait(condition, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


def test_decisions_during_reloads_never_fail_and_see_one_whole_model(admin_client, model_dir):
    from concurrent.futures import ThreadPoolExecutor

    first = (model_dir / "current").resolve()
    second = copy_bundle(model_dir, "2", make_current=False)

    def decide(i: int) -> str:
        answer = admin_client.post("/v1/decisions", json={"customer_id": f"c{i}", "channel": "email", "k": 2})
        assert answer.status_code == 200, answer.text
        return answer.json()["model_version"]

    with ThreadPoolExecutor(4) as pool:
        futures = [pool.submit(decide, i) for i in range(40)]
        for i in range(4):
            point_current(model_dir, second if i % 2 == 0 else first)
            assert admin_client.post("/admin/reload", headers=ADMIN).status_code == 200
        versions = {f.result() for f in futures}
    assert versions <= {"1", "2"}
