"""A SIGKILLed ``nbm serve`` loses no acknowledged event: every event_id answered 2xx is stored exactly once
after a restart on the same home, a batch cut short leaves nothing, and the restarted server takes new events."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import pandas as pd
import pytest

from engine.store.events import SqliteEventStore, store_path
from training.cli import main

ROOT = Path(__file__).resolve().parents[2]
BATCH = 25


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def start_server(model_dir: Path, home: Path) -> tuple[subprocess.Popen, str]:
    port = free_port()
    env = {**os.environ, "NBM_PATHS__HOME": str(home)}
    for variable in ("NBM_API_KEYS", "NBM_ADMIN_KEYS"):
        env.pop(variable, None)
    server = subprocess.Popen([sys.executable, "-m", "training.cli", "serve", "--model-dir", str(model_dir), "--port", str(port)],
                              cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(f"{url}/readyz", timeout=1).status_code == 200:
                return server, url
        except httpx.TransportError:
            pass
        if server.poll() is not None or time.monotonic() > deadline:
            server.kill()
            pytest.fail(f"nbm serve did not become ready (exit code {server.poll()})")
        time.sleep(0.1)


def impressions(batch: int, customer: str, message: pd.Series) -> list[dict]:
    ts = (pd.Timestamp.now(tz="UTC") - pd.Timedelta(minutes=1)).isoformat()  # the server checks against its own clock
    return [{"event_id": f"kill-{batch}-{i}", "ts": ts, "customer_id": customer, "event_type": "impression",
             "channel": str(message["channel"]), "message_id": str(message["message_id"])} for i in range(BATCH)]


class Writer(threading.Thread):
    """Posts numbered batches until the server stops answering; records the acknowledged event_ids."""

    def __init__(self, url: str, customer: str, message: pd.Series) -> None:
        super().__init__(daemon=True)
        self.url, self.customer, self.message = url, customer, message
        self.acknowledged: list[str] = []
        self.batches = 0  # batches sent, answered or not
        self.refused: list[str] = []  # non-2xx answers: the test fails on any

    def run(self) -> None:
        with httpx.Client(timeout=5) as client:
            while True:
                events = impressions(self.batches, self.customer, self.message)
                self.batches += 1
                try:
                    answer = client.post(f"{self.url}/v1/events", json={"events": events})
                except httpx.TransportError:
                    return  # killed
                if not answer.is_success or answer.json() != {"stored": BATCH, "duplicates": 0, "late": 0}:
                    self.refused.append(f"{answer.status_code} {answer.text}")
                    return
                self.acknowledged.extend(e["event_id"] for e in events)


def stored_ids(home: Path) -> Counter[str]:
    with SqliteEventStore(store_path(home), read_only=True) as store:
        return Counter(i for chunk in store.export() for i in chunk["event_id"])


@pytest.mark.slow
def test_acknowledged_events_survive_sigkill_exactly_once(model_dir, bundle_facts, tmp_path):
    home = tmp_path / "home"
    message = bundle_facts["messages"].iloc[0]
    server, url = start_server(model_dir, home)
    try:
        writer = Writer(url, bundle_facts["customer"], message)
        writer.start()
        deadline = time.monotonic() + 15
        while len(writer.acknowledged) < 20 * BATCH and writer.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        os.kill(server.pid, signal.SIGKILL)  # mid-stream: the writer is still posting
        writer.join(timeout=10)
    finally:
        server.kill()
        server.wait(timeout=10)
    assert server.returncode == -signal.SIGKILL
    assert not writer.is_alive() and writer.refused == []
    assert len(writer.acknowledged) >= 20 * BATCH

    server, url = start_server(model_dir, home)  # same home, so the same events.db
    try:
        assert httpx.get(f"{url}/readyz", timeout=5).status_code == 200
        later = impressions(writer.batches, bundle_facts["customer"], message)
        answer = httpx.post(f"{url}/v1/events", json={"events": later}, timeout=5)
        assert answer.status_code == 200 and answer.json() == {"stored": BATCH, "duplicates": 0, "late": 0}
    finally:
        server.terminate()
        server.wait(timeout=15)

    counts = stored_ids(home)
    assert {i: counts[i] for i in writer.acknowledged if counts[i] != 1} == {}
    assert all(counts[e["event_id"]] == 1 for e in later)
    by_batch = Counter(i.rsplit("-", 1)[0] for i in counts)
    assert set(by_batch.values()) == {BATCH}  # the batch in flight at the kill: all of it or none of it

    out = tmp_path / "events.parquet"
    assert main(["export-events", "--out", str(out), "--home", str(home)]) == 0
    exported = pd.read_parquet(out)
    assert exported["event_id"].is_unique
    assert set(writer.acknowledged) | {e["event_id"] for e in later} <= set(exported["event_id"])
    assert len(exported) == sum(counts.values())
