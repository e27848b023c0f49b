"""Load-test the decision API with locust on loopback: a mixed workload against ``nbm serve`` with one worker,
then with two, each for a bounded time.

    .venv/bin/python bench/loadtest.py [--seconds 60 --users 8]

The workload (``bench/locustfile.py``) is, by request count, 80% ``POST /v1/decisions``, 15% ``POST /v1/events``
(1-5 events) and 5% ``POST /v1/decisions/batch`` (10 decisions), from ``--users`` simulated users sending back
to back: the rate is the highest the server sustains with that many requests in flight. Locust runs headless
in a child process on this machine, so client and server share its cores. Non-2xx answers are errors.
Goal (per run): p99 of ``POST /v1/decisions`` <= 25 ms and no errors.

Back to back, the requests queue at the server, so their latency is mostly waiting. For sizing, the
one-worker server then also gets the same mix paced at 80%, 60% and 40% of the rate it reached (random,
exponential waits between a user's requests), highest first, each for a third of ``--seconds`` (at least
20 s): the first pace within the goal is what one worker handles within it.
"""

from __future__ import annotations

import argparse
import csv
import http.client
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from _server import ensure_model, running_server, world_catalog

LOCUST = str(Path(sys.executable).with_name("locust"))
LOCUSTFILE = Path(__file__).resolve().with_name("locustfile.py")
ENDPOINTS = ["/v1/decisions", "/v1/events", "/v1/decisions/batch"]
GOAL_P99_MS = 25.0
PACED_SHARES = (0.8, 0.6, 0.4)  # of the saturated rate, highest first


@dataclass(frozen=True)
class EndpointStats:
    name: str
    requests: int
    failures: int
    rate: float
    p50_ms: float
    p99_ms: float


def _warm_up(port: int, requests: int = 20) -> None:
    """A few decisions, each on a new connection so that every worker gets some, before the clock starts."""
    customers, messages_by_channel = world_catalog()
    channels = sorted(messages_by_channel)
    for i in range(requests):
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        body = json.dumps({"customer_id": customers[i], "channel": channels[i % len(channels)]})
        connection.request("POST", "/v1/decisions", body=body, headers={"Content-Type": "application/json"})
        connection.getresponse().read()
        connection.close()


def _read_stats(prefix: Path) -> tuple[dict[str, EndpointStats], list[str]]:
    """Locust's ``<prefix>_stats.csv`` by endpoint name (``Aggregated``: all of them), and a few failure samples."""
    stats = {}
    with open(f"{prefix}_stats.csv", newline="") as f:
        for row in csv.DictReader(f):
            stats[row["Name"]] = EndpointStats(
                name=row["Name"], requests=int(row["Request Count"]), failures=int(row["Failure Count"]),
                rate=float(row["Requests/s"]), p50_ms=float(row["50%"]), p99_ms=float(row["99%"]))
    samples = []
    failures = Path(f"{prefix}_failures.csv")
    if failures.exists():
        with open(failures, newline="") as f:
            samples = [f"{row['Method']} {row['Name']}: {row['Error']} ({row['Occurrences']}x)" for row in csv.DictReader(f)]
    return stats, samples


def _locust(port: int, users: int, seconds: int, prefix: Path, user_rate: float | None = None) -> tuple[dict[str, EndpointStats], list[str]]:
    env = {**os.environ, **({"NBM_LOADTEST_USER_RATE": f"{user_rate:.4f}"} if user_rate else {})}
    with open(f"{prefix}.log", "w") as log:
        # Exit code 1 only says that some requests failed: the stats count them.
        subprocess.run(
            [LOCUST, "-f", str(LOCUSTFILE), "--headless", "-u", str(users), "-r", str(users), "-t", f"{seconds}s",
             "--host", f"http://127.0.0.1:{port}", "--csv", str(prefix), "--only-summary", "--loglevel", "WARNING"],
            stdout=log, stderr=subprocess.STDOUT, check=False, timeout=seconds + 120, env=env)
    if not Path(f"{prefix}_stats.csv").exists():
        raise RuntimeError(f"locust wrote no statistics: see its output below\n{Path(f'{prefix}.log').read_text()[-2000:]}")
    return _read_stats(prefix)


def _within_goal(stats: dict[str, EndpointStats]) -> tuple[bool, float]:
    decisions = stats.get("/v1/decisions")
    p99 = decisions.p99_ms if decisions is not None else float("nan")
    return p99 <= GOAL_P99_MS and stats["Aggregated"].failures == 0, p99


def _paced(port: int, users: int, seconds: int, out: Path, saturated_rate: float) -> None:
    """The mix paced below the saturated rate, highest first, until a pace keeps decisions within the goal."""
    for share in PACED_SHARES:
        stats, _ = _locust(port, users, seconds, out / f"paced{int(share * 100)}", user_rate=share * saturated_rate / users)
        total, decisions = stats["Aggregated"], stats.get("/v1/decisions")
        met, p99 = _within_goal(stats)
        print(f"loadtest: workers 1 paced at {share:.0%} of {saturated_rate:,.1f} req/s: {total.rate:,.1f} req/s, "
              f"errors {total.failures}; POST /v1/decisions p50 {decisions.p50_ms if decisions else float('nan'):.0f} ms "
              f"p99 {p99:.0f} ms: {'within' if met else 'over'} the goal", flush=True)
        if met:
            print(f"loadtest: workers 1: {total.rate:,.1f} req/s of this mix with decisions p99 <= {GOAL_P99_MS:.0f} ms "
                  "and no errors (the pace to size workers by)", flush=True)
            return
    print(f"loadtest: workers 1: no pace down to {PACED_SHARES[-1]:.0%} kept decisions p99 <= {GOAL_P99_MS:.0f} ms", flush=True)


def _run(workers: int, users: int, seconds: int, out: Path, paced_seconds: int | None = None) -> tuple[dict[str, EndpointStats], list[str]]:
    with running_server(workers=workers) as server:
        port = server.port
        _warm_up(port)
        stats, samples = _locust(port, users, seconds, out / f"workers{workers}")
        _report(workers, users, stats, samples)
        if paced_seconds:
            _paced(port, users, paced_seconds, out, stats["Aggregated"].rate)
    return stats, samples


def _report(workers: int, users: int, stats: dict[str, EndpointStats], samples: list[str]) -> None:
    total = stats["Aggregated"]
    parts = [f"loadtest: workers {workers}, users {users}: total {total.rate:,.1f} req/s, errors {total.failures}"]
    for name in ENDPOINTS:
        s = stats.get(name)
        if s is not None:
            parts.append(f"POST {name} {s.rate:,.1f} req/s p50 {s.p50_ms:.0f} ms p99 {s.p99_ms:.0f} ms")
    print("; ".join(parts), flush=True)
    for sample in samples[:3]:
        print(f"loadtest:   error: {sample}")
    met, p99 = _within_goal(stats)
    print(f"loadtest: workers {workers}: goal p99 decisions <= {GOAL_P99_MS:.0f} ms and 0 errors: "
          f"{'met' if met else 'MISSED'} (p99 {p99:.0f} ms, {total.failures} errors)", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=60, help="length of each of the two runs")
    parser.add_argument("--users", type=int, default=8, help="simulated users, each with one request in flight")
    args = parser.parse_args()
    ensure_model()
    print(f"loadtest: locust, {args.users} users, {args.seconds} s per run, 80% decisions / 15% events / 5% batches "
          f"of 10; loopback, {os.cpu_count()} CPUs shared by client and server", flush=True)
    rates = {}
    with tempfile.TemporaryDirectory() as out:
        for workers in (1, 2):
            stats, _ = _run(workers, args.users, args.seconds, Path(out),
                            paced_seconds=max(20, args.seconds // 3) if workers == 1 else None)
            rates[workers] = stats["Aggregated"].rate
    ratio = rates[2] / rates[1] if rates[1] else float("nan")
    print(f"loadtest: scaling --workers 2 / --workers 1: {ratio:.2f}x total req/s "
          f"({rates[1]:,.1f} -> {rates[2]:,.1f}; {os.cpu_count()} CPUs, locust included)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
