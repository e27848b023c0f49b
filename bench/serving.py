"""Benchmark the decision API over HTTP on loopback: ``POST /v1/decisions`` against ``GET /healthz`` of the
same server, in the same run.

    .venv/bin/python bench/serving.py [--seconds 15 --concurrency 8]

``/healthz`` and decisions take turns on the one server, ``--segments`` times (5 by default) in ``--seconds``
each: this machine's speed drifts within a minute, and the ratio of two back-to-back runs carried
that drift. The bench worlds and ``nbm serve`` come from ``bench/_server.py``: the goal's two ends, about 60 and about
300 candidate messages per channel, each measured on its own server. The server runs as a child process
with one worker and a fresh state directory; the load comes from threads of this process, each on its own keep-alive
connection, so client and server share this machine's cores, as they do for both endpoints alike.
Non-2xx answers are counted as errors and printed. Each line also gives the server's CPU time per
request (from /proc): the ratio goal asks, in effect, that a decision cost at most 2.5 times the
server CPU of a ``/healthz``. A last run sends the same decision load to the same
app with its decision engine taken out (bench/_cached_decision_server.py): the most any engine could
reach in this server on this machine.
"""

from __future__ import annotations

import argparse
import os
import sys

import numpy as np
from _load import decision_requests, load, load_on
from _server import LARGE_CATALOG, SMALL_CATALOG, BenchWorld, ensure_model, running_server

GOAL_P99_MS = 10.0
GOAL_RATIO = 0.40  # decisions per second / healthz per second


def _line(name: str, result: tuple[np.ndarray, int, list[str], float], cpu_us: float | None = None) -> tuple[str, float, float]:
    latencies, errors, samples, elapsed = result
    rate = len(latencies) / elapsed
    p50, p99 = (np.percentile(latencies, [50, 99]) * 1000) if len(latencies) else (float("nan"), float("nan"))
    line = f"serving: {name}: {rate:,.0f} req/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms, {errors} errors"
    if cpu_us is not None:
        line += f", server CPU {cpu_us:,.0f} us per request"
    if samples:
        line += f" (e.g. {samples[0]})"
    return line, rate, p99


def _alternating(server, requests: dict[str, object], seconds: float, segments: int, concurrency: int
                 ) -> dict[str, tuple[tuple[np.ndarray, int, list[str], float], float | None]]:
    """Each kind of request for ``seconds`` in all, in ``segments`` segments taking turns (A B B A A B ...),
    pooled per kind: this machine's speed drifts by a third within a minute, and a ratio of two
    back-to-back runs 15 s long carried that drift. Returns per kind (latencies, errors, samples,
    elapsed) and the server CPU per request."""
    parts: dict[str, list] = {kind: [] for kind in requests}
    kinds = list(requests)
    for segment in range(segments):
        order = kinds if segment % 2 == 0 else kinds[::-1]
        for kind in order:
            parts[kind].append(load_on(server, requests[kind], seconds / segments, concurrency))
    pooled = {}
    for kind, runs in parts.items():
        latencies = np.concatenate([result[0] for result, _ in runs])
        errors = sum(result[1] for result, _ in runs)
        samples = [sample for result, _ in runs for sample in result[2]]
        elapsed = sum(result[3] for result, _ in runs)
        answered = [len(result[0]) + result[1] for result, _ in runs]
        cpu = [cpu_us for _, cpu_us in runs]
        cpu_us = None if any(c is None for c in cpu) else sum(c * n for c, n in zip(cpu, answered)) / max(sum(answered), 1)
        pooled[kind] = ((latencies, errors, samples, elapsed), cpu_us)
    return pooled


def _measure(bench: BenchWorld, args: argparse.Namespace) -> list[str]:
    """The goal lines for one world: healthz and decisions of one server, their ratio, and the floor."""
    ensure_model(bench)
    candidates, decision = decision_requests(bench)

    def healthz(_rng):
        return "GET", "/healthz", None

    with running_server(workers=1, model_dir=bench.model_dir) as server:
        load(server.port, decision, 2.0, args.concurrency)  # warm-up: first requests load caches
        measured = _alternating(server, {"healthz": healthz, "decisions": decision}, args.seconds, args.segments, args.concurrency)
        health_line, health_rate, _ = _line(f"[{candidates}] GET /healthz", *measured["healthz"])
        decide, decide_cpu = measured["decisions"]
        decision_line, decision_rate, p99 = _line(f"[{candidates}] POST /v1/decisions (k=1)", decide, decide_cpu)
    with running_server(cached_decisions=True, model_dir=bench.model_dir) as server:  # the engine taken out
        load(server.port, decision, 2.0, args.concurrency)
        floor_line, _, _ = _line(f"[{candidates}] POST /v1/decisions answered from one cached decision (all but the "
                                 "engine: the most any engine could reach here)", *load_on(server, decision, args.seconds, args.concurrency))
    met_p99 = p99 <= GOAL_P99_MS and decide[1] == 0
    ratio = decision_rate / health_rate if health_rate else float("nan")
    return [health_line,
            decision_line + f" (goal p99 <= {GOAL_P99_MS:.0f} ms, no errors){'' if met_p99 else ' MISSED'}",
            f"serving: [{candidates}] decisions/healthz throughput ratio {ratio:.2f} (goal >= {GOAL_RATIO})"
            f"{'' if ratio >= GOAL_RATIO else ' MISSED'}",
            floor_line]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--segments", type=int, default=5, help="turns of healthz and decisions in --seconds each")
    args = parser.parse_args()
    lines = [line for bench in (SMALL_CATALOG, LARGE_CATALOG) for line in _measure(bench, args)]
    print(f"serving: 1 worker on loopback, {args.concurrency} concurrent clients, {args.seconds:.0f} s each, healthz and "
          f"decisions taking turns in {args.segments} segments, {os.cpu_count()} CPUs shared by client and server", flush=True)
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
