"""``nbm serve`` and ``nbm export-decisions`` from the command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pandas as pd
import pytest

from training.cli import main

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model-dir", "m", "--model-uri", "models:/nbm-ranker@champion"],
         "--model-dir and --model-uri exclude each other: serve a local model dir or a registered version"),
        (["--model-uri", "nbm-ranker@champion"],
         "model URI 'nbm-ranker@champion': expected models:/<name>@<alias> or models:/<name>/<version>, "
         "e.g. models:/nbm-ranker@champion"),
        (["--model-uri", "models:/nbm-ranker/latest"], "model URI 'models:/nbm-ranker/latest': expected models:/<name>@<alias>"),
        (["--tracking-uri", "sqlite:///x.db"], "--tracking-uri is only used with --model-uri"),
    ],
)
def test_model_source_option_errors_are_exit_2(args, message, capsys):
    assert main(["serve", *args]) == 2
    assert capsys.readouterr().err.startswith(f"error: {message}")


def test_model_uri_without_a_tracking_store_is_exit_2_and_creates_none(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("NBM_PATHS__HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    assert main(["serve", "--model-uri", "models:/nbm-ranker@champion"]) == 2
    database = tmp_path / "home" / "mlflow.db"
    assert capsys.readouterr().err == (f"error: models:/nbm-ranker@champion: no tracking store sqlite:///{database} "
                                       f"(no file {database}); run nbm train first or pass --tracking-uri\n")
    assert not (tmp_path / "home").exists()


def test_model_uri_with_an_unreachable_store_is_exit_1(tmp_path, capsys, monkeypatch):
    import training.commands.serve as serve_command
    from training.tracking import RetryPolicy, Tracker

    monkeypatch.setenv("NBM_PATHS__HOME", str(tmp_path / "home"))
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)  # the tracker sets it; restored after the test
    fast = RetryPolicy(attempts=1)
    monkeypatch.setattr(serve_command, "Tracker", lambda uri: Tracker(uri, retry=fast))
    assert main(["serve", "--model-uri", "models:/nbm-ranker@champion", "--tracking-uri", "http://127.0.0.1:9"]) == 1
    assert capsys.readouterr().err.startswith("error: MLflow tracking store http://127.0.0.1:9 is unavailable: "
                                              "reading registered model nbm-ranker failed 1 time(s)")


def test_a_model_dir_without_a_bundle_is_exit_2(tmp_path, capsys):
    assert main(["serve", "--model-dir", str(tmp_path)]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path}: no model bundle here (no 'current'); run nbm train first\n"


def test_weak_api_keys_are_exit_2(tmp_path, capsys, monkeypatch, trained):
    monkeypatch.setenv("NBM_API_KEYS", "tiny")
    assert main(["serve", "--model-dir", str(trained)]) == 2
    assert "NBM_API_KEYS: key 1 is too short" in capsys.readouterr().err


def test_export_decisions_without_a_store_is_exit_2(tmp_path, capsys):
    assert main(["export-decisions", "--out", str(tmp_path / "d.csv"), "--home", str(tmp_path)]) == 2
    assert "no decision log here" in capsys.readouterr().err


def test_export_decisions_of_an_empty_log_writes_the_header(client, tmp_path):
    out = tmp_path / "d.csv"
    assert main(["export-decisions", "--out", str(out), "--home", str(tmp_path / "home")]) == 0
    assert pd.read_csv(out).columns.tolist()[:4] == ["decision_id", "decided_at", "as_of", "customer_id"]


@pytest.mark.slow
def test_serve_with_two_workers_answers_over_http(trained, tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {**os.environ, "NBM_PATHS__HOME": str(tmp_path / "home"), "NBM_API_KEYS": "a-long-enough-api-key"}
    server = subprocess.Popen([sys.executable, "-m", "training.cli", "serve", "--model-dir", str(trained), "--port", str(port),
                               "--workers", "2"], cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 45
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None and time.monotonic() < deadline, "the server did not become ready"
            time.sleep(0.2)
        url = f"http://127.0.0.1:{port}/v1/decisions"
        body = {"customer_id": "c1", "channel": "email"}
        assert httpx.post(url, json=body).status_code == 401
        answer = httpx.post(url, json=body, headers={"X-API-Key": "a-long-enough-api-key"})
        assert answer.status_code == 200 and answer.json()["model_version"] == "1"
    finally:
        server.terminate()
        output = server.communicate(timeout=30)[0]
    assert '"message": "request"' in output and "a-long-enough-api-key" not in output
