"""The decision API of this checkout against another commit's, served alternately in the same minutes.

    .venv/bin/python bench/ab_serving.py --base REF [--rounds 6 --seconds 5 --large]

The machines these benchmarks run on change speed by a third within minutes (their neighbours'
load): two ``make bench`` runs minutes apart cannot tell a 10% change from that. Short runs of the two
versions, one after the other, round after round, can: each round starts a fresh server of each (one
worker, the bench world of bench/serving.py, decisions only, 8 clients back to back) and prints its
requests per second, server CPU per request and p99; the last lines give their medians. ``REF`` is
checked out into a temporary git worktree, removed at the end; the server runs its code ahead of the
editable install on its import path (the installed dependencies are this checkout's).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
from _load import decision_requests, load, load_on
from _server import LARGE_CATALOG, REPO, SMALL_CATALOG, ensure_model, running_server

CONCURRENCY = 8


def _round(bench, decision, seconds: float, source: Path | None) -> tuple[float, float | None, float]:
    """(req/s, server CPU us per request, p99 ms) of one fresh server."""
    with running_server(model_dir=bench.model_dir, source=source) as server:
        load(server.port, decision, 2.0, CONCURRENCY)  # warm-up
        (latencies, errors, samples, elapsed), cpu_us = load_on(server, decision, seconds, CONCURRENCY)
    if errors:
        raise RuntimeError(f"{errors} failed decision requests, e.g. {samples[:1]}")
    return len(latencies) / elapsed, cpu_us, float(np.percentile(latencies, 99) * 1000)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", required=True, help="the commit (or branch, tag) to compare with")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--large", action="store_true", help="the 279-330 candidate world instead of the 53-68 one")
    args = parser.parse_args()
    bench = LARGE_CATALOG if args.large else SMALL_CATALOG
    ensure_model(bench)
    candidates, decision = decision_requests(bench)
    with tempfile.TemporaryDirectory() as parent:
        worktree = Path(parent) / "base"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--quiet", str(worktree), args.base], check=True)
        try:
            results: dict[str, list[tuple[float, float | None, float]]] = {"this checkout": [], args.base: []}
            for number in range(1, args.rounds + 1):
                pair = (("this checkout", None), (args.base, worktree))
                for name, source in pair if number % 2 else pair[::-1]:  # A B, B A, ...: neither always goes first
                    rate, cpu_us, p99 = _round(bench, decision, args.seconds, source)
                    results[name].append((rate, cpu_us, p99))
                    cpu = "" if cpu_us is None else f", server CPU {cpu_us:,.0f} us per request"
                    print(f"ab: round {number} {name}: {rate:,.0f} req/s{cpu}, p99 {p99:.2f} ms", flush=True)
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(worktree)], check=False)
    print(f"ab: [{candidates}] POST /v1/decisions, 1 worker, {CONCURRENCY} clients, {args.rounds} rounds of {args.seconds:.0f} s, medians:")
    for name, rows in results.items():
        cpus = [cpu for _, cpu, _ in rows if cpu is not None]
        cpu = f", server CPU {statistics.median(cpus):,.0f} us per request" if cpus else ""
        print(f"ab: {name}: {statistics.median(r for r, _, _ in rows):,.0f} req/s{cpu}, "
              f"p99 {statistics.median(p for _, _, p in rows):.2f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
