"""The decision API of this checkout against another commit's, served alternately in the same minutes.

    .venv/bin/python bench/ab_serving.py [--base 3414988 --rounds 4 --seconds 5 --size small|large|both]

The machines these benchmarks run on change speed by a third within minutes (their neighbours'
load): two ``make bench`` runs minutes apart cannot tell a 10% change from that. Short runs of the two
versions, one after the other, round after round, can: each round starts a fresh server of each (one
worker, the bench worlds of bench/_server.py, decisions only, 8 clients back to back) and prints its
requests per second, server CPU per request and p99; then the medians, and the goal: this checkout's
server CPU per decision at most 15% above the base's. ``--base`` is checked out into a temporary git
worktree, removed at the end; its server runs that code ahead of the editable install on its import
path (the installed dependencies are this checkout's), which is checked once it has started.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import numpy as np
from _load import decision_requests, load, load_on
from _server import LARGE_CATALOG, REPO, SMALL_CATALOG, BenchWorld, ensure_model, running_server

CONCURRENCY = 8
# The commit before issue 23's rework of features and serving: the CPU goal is measured against it.
BASE_COMMIT = "3414988"
GOAL_CPU_RATIO = 1.15  # this checkout's server CPU per decision / the base's


def _round(bench: BenchWorld, decision, seconds: float, source: Path) -> tuple[float, float | None, float]:
    """(req/s, server CPU us per request, p99 ms) of one fresh server."""
    with running_server(model_dir=bench.model_dir, source=source) as server:
        load(server.port, decision, 2.0, CONCURRENCY)  # warm-up
        (latencies, errors, samples, elapsed), cpu_us = load_on(server, decision, seconds, CONCURRENCY)
    if errors:
        raise RuntimeError(f"{errors} failed decision requests from {source}, e.g. {samples[:1]}")
    return len(latencies) / elapsed, cpu_us, float(np.percentile(latencies, 99) * 1000)


def _check_ran_from(worktree: Path) -> None:
    """The base server imported its code from the worktree (Python cached it there), not from this
    checkout through the editable install."""
    if not any((worktree / "serving" / "__pycache__").glob("app.*.pyc")):
        raise RuntimeError(f"the base server did not run the code of {worktree}: no serving/__pycache__/app.*.pyc there")


def compare(bench: BenchWorld, base: str, worktree: Path, rounds: int, seconds: float) -> tuple[list[str], bool]:
    """The lines of one bench world's A/B run and whether the CPU goal is met."""
    # A model the base can serve too: trained by the base's code, in a folder of its own.
    bench = replace(bench, model_dir=bench.model_dir.with_name(f"{bench.model_dir.name}-trained-by-{base}"))
    ensure_model(bench, source=worktree)
    candidates, decision = decision_requests(bench)
    names = {"this checkout": REPO, base: worktree}
    results: dict[str, list[tuple[float, float | None, float]]] = {name: [] for name in names}
    for number in range(1, rounds + 1):
        order = list(names) if number % 2 else list(names)[::-1]  # A B, B A, ...: neither always goes first
        for name in order:
            rate, cpu_us, p99 = _round(bench, decision, seconds, names[name])
            if name == base and number <= 2:
                _check_ran_from(worktree)
            results[name].append((rate, cpu_us, p99))
            cpu = "" if cpu_us is None else f", server CPU {cpu_us:,.0f} us per request"
            print(f"ab: [{candidates}] round {number} {name}: {rate:,.0f} req/s{cpu}, p99 {p99:.2f} ms", flush=True)
    lines = [f"ab: [{candidates}] POST /v1/decisions, 1 worker, {CONCURRENCY} clients, {rounds} rounds of {seconds:.0f} s, medians:"]
    cpu_medians = {}
    for name, rows in results.items():
        cpus = [cpu for _, cpu, _ in rows if cpu is not None]
        cpu_medians[name] = statistics.median(cpus) if cpus else None
        cpu = f", server CPU {cpu_medians[name]:,.0f} us per request" if cpus else ""
        lines.append(f"ab: [{candidates}] {name}: {statistics.median(r for r, _, _ in rows):,.0f} req/s{cpu}, "
                     f"p99 {statistics.median(p for _, _, p in rows):.2f} ms")
    ours, theirs = cpu_medians["this checkout"], cpu_medians[base]
    if ours is None or theirs is None:
        lines.append(f"ab: [{candidates}] server CPU per decision: not measured (no /proc): FAIL")
        return lines, False
    ratio = ours / theirs
    met = ratio <= GOAL_CPU_RATIO
    lines.append(f"ab: [{candidates}] server CPU per decision, this checkout / {base}: {ratio:.2f} "
                 f"(goal <= {GOAL_CPU_RATIO:.2f}): {'PASS' if met else 'FAIL'}")
    return lines, met


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", default=BASE_COMMIT, help="the commit (or branch, tag) to compare with")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--size", choices=("small", "large", "both"), default="both",
                        help="the 53-68 candidate world, the 279-330 one, or both")
    args = parser.parse_args()
    benches = {"small": [SMALL_CATALOG], "large": [LARGE_CATALOG], "both": [SMALL_CATALOG, LARGE_CATALOG]}[args.size]
    lines, met = [], True
    with tempfile.TemporaryDirectory() as parent:
        worktree = Path(parent) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(worktree), args.base], check=True)
        try:
            for bench in benches:
                bench_lines, bench_met = compare(bench, args.base, worktree, args.rounds, args.seconds)
                lines += bench_lines
                met &= bench_met
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
    for line in lines:
        print(line)
    return 0 if met else 1


if __name__ == "__main__":
    sys.exit(main())
