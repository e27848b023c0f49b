"""Benchmark the decision API over HTTP on loopback: ``POST /v1/decisions`` latency at 8 concurrent clients.

    .venv/bin/python bench/serving.py [--seconds 15 --concurrency 8]

The bench worlds and ``nbm serve`` come from ``bench/_server.py``: about 60 and about 300 candidate
messages per channel, each measured on its own server. The server runs as a child process with one
worker and a fresh state directory; the load comes from threads of this process, each on its own
keep-alive connection, so client and server share this machine's cores. Non-2xx answers are counted as
errors and printed. Each line also gives the server's CPU time per request (from /proc). The goal, per
world: p99 <= 10 ms with no errors. The CPU goal against the commit before is bench/ab_serving.py's.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from _load import decision_requests, load, load_on
from _server import LARGE_CATALOG, SMALL_CATALOG, BenchWorld, ensure_model, running_server

GOAL_P99_MS = 10.0


def _measure(bench: BenchWorld, args: argparse.Namespace) -> tuple[str, bool]:
    """The goal line of one world, and whether the goal is met."""
    ensure_model(bench)
    candidates, decision = decision_requests(bench)
    with running_server(workers=1, model_dir=bench.model_dir) as server:
        load(server.port, decision, 2.0, args.concurrency)  # warm-up: first requests load caches
        (latencies, errors, samples, elapsed), cpu_us = load_on(server, decision, args.seconds, args.concurrency)
    p50, p99 = (np.percentile(latencies, [50, 99]) * 1000) if len(latencies) else (float("nan"), float("nan"))
    met = bool(p99 <= GOAL_P99_MS) and errors == 0
    cpu = "" if cpu_us is None else f", server CPU {cpu_us:,.0f} us per request"
    line = (f"serving: [{candidates}] POST /v1/decisions (k=1): {len(latencies) / elapsed:,.0f} req/s, p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms, {errors} errors{cpu} (goal p99 <= {GOAL_P99_MS:.0f} ms, 0 errors): {'PASS' if met else 'FAIL'}")
    if samples:
        line += f" (e.g. {samples[0]})"
    return line, met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    measured = [_measure(bench, args) for bench in (SMALL_CATALOG, LARGE_CATALOG)]
    print(f"serving: 1 worker on loopback, {args.concurrency} concurrent clients, {args.seconds:.0f} s per world, "
          f"{os.cpu_count()} CPUs shared by client and server", flush=True)
    for line, _ in measured:
        print(line)
    return 0 if all(met for _, met in measured) else 1


if __name__ == "__main__":
    sys.exit(main())
