"""What the HTTP benchmarks share: the small trained worlds they serve, and ``nbm serve`` as a child process.

A small simulated world (3,000 customers, 300 messages over 5 channels: about 60 candidates per channel)
is trained once into ``.nbm/bench/serving-model`` and reused; ``LARGE_CATALOG`` is the same world with
1,500 messages (about 300 candidates per channel), the other end of the decision API's speed goal. The
server gets a fresh state directory and no API keys.
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
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
NBM = str(Path(sys.executable).with_name("nbm"))


@dataclass(frozen=True)
class BenchWorld:
    world: Path
    model_dir: Path
    messages: int
    customers: int = 3000
    days: int = 60
    seed: int = 11


SMALL_CATALOG = BenchWorld(REPO / ".nbm" / "bench" / "world-serving", REPO / ".nbm" / "bench" / "serving-model", messages=300)
LARGE_CATALOG = BenchWorld(REPO / ".nbm" / "bench" / "world-serving-1500", REPO / ".nbm" / "bench" / "serving-model-1500",
                           messages=1500)
WORLD, MODEL_DIR = SMALL_CATALOG.world, SMALL_CATALOG.model_dir  # what the load test serves


def ensure_model(bench: BenchWorld = SMALL_CATALOG, source: Path | None = None) -> None:
    """The bench world and its model, made unless they exist; ``source``: the checkout whose code trains the
    model (default this one). A model trained by an older commit is served by newer ones too (features are
    read by name), not the other way round: an A/B run trains with the older side."""
    if not (bench.world / "events.parquet").exists():
        subprocess.run([NBM, "simulate", "--out", str(bench.world), f"--customers={bench.customers}", f"--days={bench.days}",
                        f"--messages={bench.messages}", f"--seed={bench.seed}"], check=True, stdout=subprocess.DEVNULL)
    if not (bench.model_dir / "current").exists():
        env = dict(os.environ)
        if source is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [os.environ.get("PYTHONPATH")])])
        subprocess.run([sys.executable, "-m", "training.cli", "train", "--data", str(bench.world), "--model-dir", str(bench.model_dir),
                        "--tracking-uri", f"sqlite:///{bench.model_dir / 'mlflow.db'}",
                        "--force-promote"],  # served whatever the gate says: the bench measures serving
                       check=True, stdout=subprocess.DEVNULL, env=env, cwd=source)


def world_catalog(bench: BenchWorld = SMALL_CATALOG) -> tuple[list[str], dict[str, list[str]]]:
    """The bench world's customer ids, and its message ids by channel."""
    customers = pd.read_parquet(bench.world / "customers.parquet", columns=["customer_id"])["customer_id"].astype(str).tolist()
    messages = pd.read_parquet(bench.world / "messages.parquet", columns=["message_id", "channel"]).astype(str)
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


@dataclass(frozen=True)
class Server:
    port: int
    pid: int

    def cpu_seconds(self) -> float | None:
        """CPU time the server process has used so far (user + system, all its threads), from /proc; None
        where there is no /proc. With several workers, the parent only."""
        try:
            stat = Path(f"/proc/{self.pid}/stat").read_text()
        except OSError:
            return None
        fields = stat[stat.rindex(")") + 2 :].split()  # after the command name, which may hold spaces
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running_server(workers: int = 1, *, model_dir: Path = MODEL_DIR, source: Path | None = None) -> Iterator[Server]:
    """``nbm serve`` on the bench model, loopback, a free port and a temporary home; yields it once ready
    and stops the server on exit. The server runs the ``engine``, ``serving`` and ``training`` of
    ``source`` (default: the checkout this file is in), ahead of the editable install on its import path
    (bench/ab_serving.py serves another commit's)."""
    port = free_port()
    source = source if source is not None else REPO
    with tempfile.TemporaryDirectory() as home:
        env = {**os.environ, "NBM_HOME": home, "NBM_PATHS__HOME": home}
        env["PYTHONPATH"] = os.pathsep.join([str(source), *filter(None, [os.environ.get("PYTHONPATH")])])
        env.pop("NBM_API_KEYS", None)
        env.pop("PYTHONDONTWRITEBYTECODE", None)  # the bytecode cache shows which code ran (bench/ab_serving.py)
        command = [NBM, "serve", "--model-dir", str(model_dir), "--host", "127.0.0.1", "--port", str(port),
                   "--workers", str(workers)]
        log = Path(home) / "server.log"
        with log.open("w") as stderr:
            server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=stderr, cwd=source)
        try:
            try:
                wait_ready(port, server)
            except RuntimeError as exc:
                raise RuntimeError(f"{exc} (serving {source}); its last log lines:\n{log.read_text()[-2000:]}") from None
            yield Server(port, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)
