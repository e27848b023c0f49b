"""Latency of the online decision engine (no HTTP): DecisionEngine.decide, decide_all_channels, and
decide_each on requests decided together.

    .venv/bin/python bench/decisions.py --model-dir DIR --data DIR [--requests 2000 --seed 0]

Known customers of the bundle, each with live events: their events of the two days before the state's
cutoff replayed two days later (so the engine merges state and live events as in production), and
``as_of`` one hour after the last of them; they reach the engine as the event store's contract rows.
Prints p50/p99 per call, in wall-clock and in this process's CPU time (which other processes on a busy
machine disturb less), and where the time of a call goes.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from engine.config import Settings
from engine.contract.load import load_dataset
from engine.store.interface import EVENT_COLUMNS, contract_rows
from engine.model.bundle import load_bundle
from engine.policy.online import DecisionEngine, DecisionInput


def _requests(events: pd.DataFrame, cutoff: pd.Timestamp, customers: np.ndarray, channels: tuple[str, ...],
              rng: np.random.Generator) -> list[tuple[str, str, pd.DataFrame]]:
    shift = pd.Timedelta(days=2)
    recent = events.loc[events["ts"] >= cutoff - shift, list(EVENT_COLUMNS)].assign(ts=lambda f: f["ts"] + shift)
    # As the event store hands them to the engine in the API: contract rows, not frames.
    by_customer = {c: contract_rows(part) for c, part in recent.groupby("customer_id", observed=True)}
    return [(c, str(rng.choice(channels)), by_customer.get(c, [])) for c in customers]


def _quantiles(seconds: list[float]) -> str:
    ms = np.asarray(seconds) * 1000
    return f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms (n={len(ms)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model-dir", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True)
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    bundle = load_bundle(args.model_dir)
    settings = Settings()
    started = time.perf_counter()
    engine = DecisionEngine(bundle, settings)
    print(f"engine ready in {1000 * (time.perf_counter() - started):.0f} ms; model {engine.model_version}, "
          f"{bundle.booster.num_trees()} trees, {len(bundle.feature_names)} features, "
          f"{len(bundle.messages)} messages: {bundle.messages.groupby('channel').size().to_dict()}")
    events = load_dataset(args.data, settings.validation).events
    cutoff = pd.Timestamp(bundle.state.cutoff_ns, tz="UTC")
    rng = np.random.default_rng(args.seed)
    customers = rng.choice(np.asarray(bundle.state.log.customers.values), size=args.requests)
    requests = _requests(events, cutoff, customers, engine.channels, rng)
    as_of = cutoff + pd.Timedelta(days=2, hours=1)
    print(f"live events per request: mean {np.mean([len(r[2]) for r in requests]):.1f}")
    for label, call in [
        ("decide k=1", lambda c, ch, live: engine.decide(c, ch, as_of=as_of, live_events=live)),
        ("decide k=3 explain", lambda c, ch, live: engine.decide(c, ch, k=3, as_of=as_of, live_events=live, explain=True)),
        ("decide_all_channels", lambda c, ch, live: engine.decide_all_channels(c, as_of=as_of, live_events=live)),
    ]:
        for c, ch, live in requests[:50]:  # warm-up
            call(c, ch, live)
        wall, cpu = [], []
        for c, ch, live in requests:
            t, t_cpu = time.perf_counter(), time.process_time()
            call(c, ch, live)
            wall.append(time.perf_counter() - t)
            cpu.append(time.process_time() - t_cpu)
        print(f"{label:22s} wall {_quantiles(wall)}\n{'':22s} cpu  {_quantiles(cpu)}")
    _together(engine, requests, as_of)
    _breakdown(engine, requests, as_of)


def _together(engine: DecisionEngine, requests, as_of: pd.Timestamp) -> None:
    """Mean time per decision when the API's batcher hands the engine concurrent requests together."""
    for size in (1, 4, 8, 16):
        batches = [requests[i : i + size] for i in range(0, len(requests) - size + 1, size)]
        started = time.perf_counter()
        for batch in batches:
            engine.decide_each([DecisionInput(c, ch, as_of, live) for c, ch, live in batch])
        per_decision = (time.perf_counter() - started) / (len(batches) * size)
        print(f"decide_each of {size:<2d}       {1000 * per_decision:.2f} ms per decision")


def _breakdown(engine: DecisionEngine, requests, as_of: pd.Timestamp) -> None:
    """Mean time of each step of decide(k=1), timed by wrapping the engine's own step methods."""
    totals: dict[str, float] = {}
    steps = {"events": (engine._customers, "events_of_each"), "features": (engine, "_build_batch"),
             "rules+contact": (engine, "_policy_verdict"), "predict": (engine, "_predict")}
    originals = {}
    for name, (owner, attribute) in steps.items():
        original = getattr(owner, attribute)
        originals[name] = (owner, attribute)

        def timed(*a, _original=original, _name=name, **kw):
            t = time.perf_counter()
            try:
                return _original(*a, **kw)
            finally:
                totals[_name] = totals.get(_name, 0.0) + time.perf_counter() - t

        setattr(owner, attribute, timed)
    t = time.perf_counter()
    for c, ch, live in requests:
        engine.decide(c, ch, as_of=as_of, live_events=live)
    whole = time.perf_counter() - t
    for owner, attribute in originals.values():
        delattr(owner, attribute)
    n = len(requests)
    parts = ", ".join(f"{k} {1000 * v / n:.2f}" for k, v in totals.items())
    print(f"decide k=1 mean {1000 * whole / n:.2f} ms: {parts}, rest {1000 * (whole - sum(totals.values())) / n:.2f} (ms)")


if __name__ == "__main__":
    main()
