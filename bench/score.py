"""Benchmark ``nbm score --channel all`` (the batch next-best messages for a campaign) at scale, beside the
API's in-process decision rate.

    .venv/bin/python bench/score.py [--customers 200000] [--million 1000000] [--skip-million]
                                    [--train-customers 20000] [--api-customers 2000]

Worlds: simulated, 90 days of history, 300 messages over the simulator's 5 channels (about 60 candidate
messages per channel, the small end of the decision API's goal, as in bench/_server.py), seed 1. They are
kept under ``.nbm/bench/`` and reused while their parameters match (``world-200k`` is the training bench's
speed world); the catalog is drawn from its own random stream of the seed, so every world of the bench has
the same messages, which the bench checks against the model's before scoring.

The model is trained once (``nbm train``, default settings) on a separate ``--train-customers`` world of the
same seed and catalog, and kept in ``.nbm/bench/score-model-<n>``: the bench measures scoring, not training.

Each ``nbm score`` runs alone as a child process; its wall time and its own peak RSS (``wait4``) are
measured, and it is killed after ``--timeout-minutes`` or past ``--memory-cap-gb`` of RSS (its peak up to then is
printed, a lower bound; the cap keeps a run that does not bound its memory from taking this shared machine's).
Decisions are customers x channels (k = 1 per customer and channel). Goals (issue 22): the
``--customers`` world in under 3 minutes and 4 GB; the ``--million`` world in bounded memory: its peak at
most 1.5 times the smaller world's. Last, the API's figure on the same bundle:
``DecisionEngine.decide_all_channels`` in this process, one customer after the other, for ``--api-customers``
customers of the model's state at the same instant, without live events (as the batch has none).

A missed goal prints FAIL; the exit code is non-zero only when a run failed (exit code, killed, or a
catalog that does not match the model's).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import subprocess
import os
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import psutil
import pyarrow.parquet as pq
# bench/training.py (this script's folder comes first on sys.path): it shadows the project's training package
# in this process, which imports none of it (engine never does).
from training import NBM, REPO, ChildRun, World, ensure_world, run_child, train

from engine.config import Settings
from engine.model.bundle import Bundle, load_bundle
from engine.policy.online import DecisionEngine

DAYS = 90
MESSAGES = 300  # over 5 channels: about 60 per channel
SEED = 1
GOAL_SECONDS = 180.0
GOAL_RSS_GB = 4.0
GOAL_RSS_RATIO = 1.5  # bounded memory: the larger world's peak over the smaller's
TRAIN_TIMEOUT_SECONDS = 30 * 60


def world(customers: int) -> World:
    """The bench world of ``customers`` customers (``world-200k``, ``world-1m``: shared with other benches)."""
    size = f"{customers // 1_000_000}m" if customers % 1_000_000 == 0 else (
        f"{customers // 1000}k" if customers % 1000 == 0 else str(customers))
    return World(REPO / ".nbm" / "bench" / f"world-{size}", customers=customers, days=DAYS, messages=MESSAGES, seed=SEED)


def prepare(w: World) -> str:
    """Simulate the world unless it is already there; say which, and how long it took."""
    if (w.path / "events.parquet").exists():
        ensure_world(w)  # checks that its parameters are the bench's
        return f"reused {w.path.relative_to(REPO)}"
    started = time.perf_counter()
    ensure_world(w)
    return f"simulated into {w.path.relative_to(REPO)} in {time.perf_counter() - started:.0f} s"


def end_of_data(w: World) -> str:
    """The instant the world's data end (the simulator's ``end``): every event is before it."""
    return json.loads((w.path / "ground_truth" / "params.json").read_text())["end"]


def trained_model(w: World) -> tuple[Path, str]:
    """The bench's model for the training world, trained once and then reused: its newest bundle, promoted
    or not (the quality gate may refuse a small world's model; the bench measures speed, not quality)."""
    scratch = REPO / ".nbm" / "bench" / f"score-model-{w.customers}"
    if bundles := sorted((scratch / "model").glob("bundle-*")):
        return bundles[-1], f"reused {bundles[-1].relative_to(REPO)}"
    run, model_dir, _ = train(w.path, scratch, "nbm train", None, TRAIN_TIMEOUT_SECONDS)
    if run.returncode != 0:
        raise RuntimeError(f"nbm train exited {run.returncode}:\n" + "\n".join(run.tail))
    bundle = sorted(model_dir.glob("bundle-*"))[-1]
    return bundle, f"trained {bundle.relative_to(REPO)} in {run.seconds:.0f} s, peak RSS {run.peak_rss_gb:.2f} GB"


def check_catalog(w: World, bundle: Bundle) -> None:
    """Every message of the world must be one the model was trained with, or the score would skip it."""
    ids = pd.read_parquet(w.path / "messages.parquet", columns=["message_id"])["message_id"].astype(str)
    unknown = sorted(set(ids) - {str(m) for m in bundle.spec.vocab.messages.values})
    if unknown or len(ids) != MESSAGES:
        raise RuntimeError(f"{w.path}: {len(ids)} messages, {len(unknown)} unknown to model {bundle.version} "
                           f"(e.g. {unknown[:3]}): remove the world or the model and run again")


class MemoryCap:
    """While open, kill the process group of any child of this process whose RSS passes ``gb``: a run that
    does not hold its memory must not push this machine (24 GB, shared) to the OOM killer, which could
    pick another process. Past the cap the bounded-memory goal is missed anyway."""

    def __init__(self, gb: float) -> None:
        self.gb = gb
        self.killed = False
        self.peak_total_gb = 0.0  # the children's RSS summed, sampled every 0.2 s
        self._stop = threading.Event()
        self._watcher = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> MemoryCap:
        self._watcher.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._watcher.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.2):
            total = 0
            for child in psutil.Process().children(recursive=True):
                try:
                    rss = child.memory_info().rss
                    total += rss
                    if rss > self.gb * 1024**3:
                        os.killpg(os.getpgid(child.pid), signal.SIGKILL)
                        self.killed = True
                except (psutil.NoSuchProcess, ProcessLookupError):
                    continue
            # nbm score --workers N runs N processes: wait4 reports the largest one's peak, not their sum.
            self.peak_total_gb = max(self.peak_total_gb, total / 1024**3)


@dataclass(frozen=True)
class ScoreRun:
    customers: int
    channels: int
    run: ChildRun
    rows: int | None  # rows written; None when the run failed
    capped: bool  # killed at the memory cap
    peak_total_gb: float  # its processes' RSS summed (sampled), or its own peak if larger


    @property
    def decisions_per_second(self) -> float:
        return self.customers * self.channels / self.run.seconds


def score(w: World, bundle: Path, channels: int, scratch: Path, timeout: float, cap_gb: float, workers: int) -> ScoreRun:
    out = scratch / f"scores-{w.customers}.parquet"
    command = [NBM, "score", "--data", str(w.path), "--model-dir", str(bundle), "--as-of", end_of_data(w),
               "--channel", "all", "--workers", str(workers), "--out", str(out)]
    with MemoryCap(cap_gb) as cap:
        run = run_child(command, f"nbm score {w.customers:,}", timeout)
    rows = pq.ParquetFile(out).metadata.num_rows if run.returncode == 0 and out.exists() else None
    if out.exists():
        out.unlink()
    return ScoreRun(w.customers, channels, run, rows, cap.killed, max(cap.peak_total_gb, run.peak_rss_gb))


def describe(s: ScoreRun, timeout: float) -> str:
    head = f"score {s.customers:,} customers x {s.channels} channels ({MESSAGES} messages, ~{MESSAGES // s.channels} per channel): "
    if s.rows is None:
        why = (f"killed at the memory cap after {s.run.seconds:.1f} s" if s.capped else f"killed at the {timeout:.0f} s limit"
               if s.run.seconds >= timeout else f"exited {s.run.returncode} after {s.run.seconds:.1f} s")
        return head + f"FAILED: {why}, peak RSS so far {s.peak_total_gb:.2f} GB"
    scoring = s.run.phases.get("score")
    inside = f" (of which [score] {scoring[0]:.1f} s)" if scoring else ""
    return head + (f"{s.run.seconds:.1f} s wall{inside}, peak RSS {s.peak_total_gb:.2f} GB (all its processes), "
                   f"{s.decisions_per_second:,.0f} decisions/s, {s.rows:,} rows{s.run.contention()}")


def api_rate(bundle: Bundle, as_of: pd.Timestamp, customers: int, seed: int) -> tuple[float, int, int]:
    """Decisions per second of ``decide_all_channels`` in this process: (rate, customers, channels)."""
    engine = DecisionEngine(bundle, Settings(), seed=seed)
    known = np.asarray(bundle.state.log.customers.values)
    sample = [str(c) for c in np.random.default_rng(seed).choice(known, size=min(customers, len(known)), replace=False)]
    at = max(as_of, pd.Timestamp(bundle.state.cutoff_ns, tz="UTC"))  # the engine refuses instants before its state
    for customer in sample[:50]:  # warm-up: first calls fill caches
        engine.decide_all_channels(customer, as_of=at, live_events=None)
    started = time.perf_counter()
    for customer in sample:
        engine.decide_all_channels(customer, as_of=at, live_events=None)
    seconds = time.perf_counter() - started
    return len(sample) * len(engine.channels) / seconds, len(sample), len(engine.channels)


def header() -> None:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=False)
    print(f"score: commit {commit.stdout.strip() or '?'}, {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC; "
          f"worlds of {DAYS} days, {MESSAGES} messages over 5 channels (~{MESSAGES // 5} per channel), seed {SEED}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000, help="the world with the time and memory goal")
    parser.add_argument("--million", type=int, default=1_000_000, help="the world with the bounded-memory goal")
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--train-customers", type=int, default=20_000, help="the world the model is trained on")
    parser.add_argument("--api-customers", type=int, default=2_000)
    parser.add_argument("--timeout-minutes", type=float, default=15.0, help="each nbm score is killed after this")
    parser.add_argument("--memory-cap-gb", type=float, default=12.0, help="each nbm score is killed past this RSS")
    parser.add_argument("--seed", type=int, default=0, help="the API sample's customers")
    parser.add_argument("--workers", type=int, default=2, help="nbm score --workers: this machine has 2 cores")
    args = parser.parse_args()
    header()
    timeout = 60 * args.timeout_minutes
    sizes = [args.customers] + ([] if args.skip_million else [args.million])
    try:
        for w in [world(args.train_customers)] + [world(n) for n in sizes]:
            print(f"score: world of {w.customers:,} customers: {prepare(w)}", flush=True)
        bundle_dir, how = trained_model(world(args.train_customers))
        print(f"score: model on the {args.train_customers:,}-customer world: {how}", flush=True)
        bundle = load_bundle(bundle_dir)
        for n in sizes:
            check_catalog(world(n), bundle)
    except Exception as exc:  # reported, and the exit code says so
        print(f"score: FAILED: {type(exc).__name__}: {exc}")
        return 1

    channels = int(bundle.messages["channel"].nunique())
    runs: list[ScoreRun] = []
    with tempfile.TemporaryDirectory(prefix="nbm-bench-score-") as scratch:
        for n in sizes:
            runs.append(score(world(n), bundle_dir, channels, Path(scratch), timeout, args.memory_cap_gb, args.workers))
    lines = []
    first = runs[0]
    met = first.rows is not None and first.run.seconds < GOAL_SECONDS and first.peak_total_gb < GOAL_RSS_GB
    lines.append(f"{describe(first, timeout)}  goal < {GOAL_SECONDS:.0f} s, < {GOAL_RSS_GB:.0f} GB  {'PASS' if met else 'FAIL'}")
    if len(runs) > 1:
        big = runs[1]
        ratio = big.peak_total_gb / first.peak_total_gb
        verdict = "PASS" if big.rows is not None and ratio < GOAL_RSS_RATIO else "FAIL"
        lines.append(f"{describe(big, timeout)}  goal bounded memory: peak {ratio:.2f}x the {first.customers:,}-customer "
                     f"run's (< {GOAL_RSS_RATIO}x)  {verdict}")
    rate, sampled, api_channels = api_rate(bundle, pd.Timestamp(end_of_data(world(args.customers))), args.api_customers, args.seed)
    batch = f"; nbm score {first.customers:,}: {first.decisions_per_second / rate:.2f}x the API's" if first.rows is not None else ""
    lines.append(f"API in-process (DecisionEngine.decide_all_channels, one customer at a time, no live events): "
                 f"{sampled:,} customers x {api_channels} channels, {rate:,.0f} decisions/s{batch}")
    for line in lines:
        print(line if line.startswith("score ") else f"score: {line}")
    return 0 if all(r.rows is not None for r in runs) else 1


if __name__ == "__main__":
    sys.exit(main())
