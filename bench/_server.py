"""What the HTTP benchmarks share: the small trained world they serve, and ``nbm serve`` as a child process.

A small simulated world (3,000 customers, 300 messages over 5 channels) is trained once into
``.nbm/bench/serving-model`` and reused. The server gets a fresh state directory and no API keys.
"""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
NBM = str(Path(sys.executable).with_name("nbm"))
WORLD = REPO / ".nbm" / "bench" / "world-serving"
MODEL_DIR = REPO / ".nbm" / "bench" / "serving-model"
WORLD_ARGS = {"customers": 3000, "days": 60, "messages": 300, "seed": 11}


def ensure_model() -> None:
    if not (WORLD / "events.parquet").exists():
        subprocess.run([NBM, "simulate", "--out", str(WORLD), *(f"--{k}={v}" for k, v in WORLD_ARGS.items())],
                       check=True, stdout=subprocess.DEVNULL)
    if not (MODEL_DIR / "current").exists():
        subprocess.run([NBM, "train", "--data", str(WORLD), "--model-dir", str(MODEL_DIR),
                        "--tracking-uri", f"sqlite:///{MODEL_DIR / 'mlflow.db'}"], check=True, stdout=subprocess.DEVNULL)


def world_catalog() -> tuple[list[str], dict[str, list[str]]]:
    """The bench world's customer ids, and its message ids by channel."""
    customers = pd.read_parquet(WORLD / "customers.parquet", columns=["customer_id"])["customer_id"].astype(str).tolist()
    messages = pd.read_parquet(WORLD / "messages.parquet", columns=["message_id", "channel"]).astype(str)
    return customers, {channel: group["message_id"].tolist() for channel, group in messages.groupby("channel")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, server: subprocess.Popen, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"nbm serve exited with code {server.returncode}")
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/readyz")
            if connection.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"nbm serve not ready after {timeout:.0f} s")


@contextmanager
def running_server(workers: int = 1, *, cached_decisions: bool = False) -> Iterator[int]:
    """``nbm serve`` on the bench model, loopback, a free port and a temporary home; yields the port once ready
    and stops the server on exit. ``cached_decisions``: the same app in one worker, answering every decision
    with one decision made at its first request (bench/_cached_decision_server.py)."""
    port = free_port()
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "NBM_HOME": home, "NBM_PATHS__HOME": home}
        env.pop("NBM_API_KEYS", None)
        if cached_decisions:
            command = [sys.executable, str(REPO / "bench" / "_cached_decision_server.py"), str(MODEL_DIR), str(port)]
        else:
            command = [NBM, "serve", "--model-dir", str(MODEL_DIR), "--host", "127.0.0.1", "--port", str(port),
                       "--workers", str(workers)]
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        try:
            wait_ready(port, server)
            yield port
        finally:
            server.terminate()
            server.wait(timeout=30)
