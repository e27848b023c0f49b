"""Benchmark the world simulator: simulate and write parquet in a child process, report time and peak RSS.

    .venv/bin/python bench/simulator.py [--customers 100000 --days 90 --messages 120 --seed 0 --out DIR]

The child runs alone so that its peak resident memory is measured without this process's own.
"""

from __future__ import annotations

import argparse
import multiprocessing
import queue
import resource
import sys
import tempfile
import time
from pathlib import Path

GOAL_SECONDS = 120.0
GOAL_RSS_GB = 4.0


def _run(customers: int, days: int, messages: int, seed: int, out_dir: str, result: multiprocessing.Queue) -> None:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from engine.simulate import SimulationParams, simulate, write_world

    started = time.perf_counter()
    world = simulate(SimulationParams(customers=customers, days=days, messages=messages, seed=seed))
    simulated = time.perf_counter() - started
    write_world(world, out_dir)
    result.put((len(world.events), simulated, time.perf_counter() - started))


def _peak_child_rss_gb() -> float:
    # ru_maxrss is in KiB on Linux (bytes on macOS).
    kib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return kib * (1 if sys.platform != "darwin" else 1 / 1024) / 1024**2


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--messages", type=int, default=120)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="keep the data here (default: a temp dir)")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="nbm-bench-") as scratch:
        out_dir = str(args.out or Path(scratch) / "world")
        context = multiprocessing.get_context("spawn")
        result = context.Queue()
        child = context.Process(target=_run, args=(args.customers, args.days, args.messages, args.seed,
                                                   out_dir, result))
        child.start()
        outcome = None
        while outcome is None and (child.is_alive() or not result.empty()):
            try:
                outcome = result.get(timeout=1.0)
            except queue.Empty:
                continue
        child.join()
        if outcome is None or child.exitcode != 0:
            print(f"simulator: child failed with exit code {child.exitcode}", file=sys.stderr)
            return 1
        n_events, simulated, total = outcome
        size_mb = sum(p.stat().st_size for p in Path(out_dir).rglob("*") if p.is_file()) / 1024**2
    rss = _peak_child_rss_gb()
    print(f"simulator: {args.customers} customers x {args.days} days -> {n_events} events in {total:.1f} s "
          f"(goal < {GOAL_SECONDS:.0f} s), peak RSS {rss:.2f} GB (goal < {GOAL_RSS_GB:.0f} GB)")
    print(f"simulator: {args.messages} messages; simulate {simulated:.1f} s, write {total - simulated:.1f} s, "
          f"{size_mb:.0f} MB on disk")
    ok = total < GOAL_SECONDS and rss < GOAL_RSS_GB
    print(f"simulator: {'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
