"""Benchmark point-in-time features: the training matrix and the serving snapshot, and three representative
features computed by nbm, polars and DuckDB on the same events.

    .venv/bin/python bench/features.py [--customers 200000 --days 90 --messages 300 --seed 1 --data DIR]

Every figure is measured in this run and printed beside its goal. The matrix and the snapshot each run in
a child process so that the peak RSS printed is that step's own (it includes the data the child loaded).
polars and DuckDB get the events already encoded as integers (customer, time in ns, type and channel
codes), built before timing: the input most favourable to them. Their answers must equal nbm's before any
time is printed; a benchmark that compares different answers is worthless.
"""

from __future__ import annotations

import argparse
import gc
import json
import multiprocessing
import os
import queue
import resource
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from engine.config import Settings, load_settings
from engine.contract.load import Dataset, load_dataset
from engine.features.build import CHUNK_ROWS, CatalogTable, ProfileTable, build_features, make_history
from engine.features.history import NS_PER_DAY, History, Requests
from engine.features.partitions import per_partition
from engine.features.log import EVENT_CODE, EventLog
from engine.features.spec import FeatureSpec
from engine.features.state import FeatureState
from engine.features.vocab import Vocabulary
from engine.features.workers import LookupThreads
from engine.memory import release_freed_memory

REPO = Path(__file__).resolve().parents[1]
GOAL_TRAINING_RSS_GB = 6.0
GOAL_RATIO = 1.5  # nbm's query time / the faster of polars and DuckDB
WINDOW_DAYS = 30
IMPRESSION, PURCHASE = EVENT_CODE["impression"], EVENT_CODE["purchase"]
Keyed = tuple[np.ndarray, np.ndarray, np.ndarray]  # customer, ts, value: one answer per exposure


# ---- data and memory ----------------------------------------------------------------------------------

def _ensure_dataset(args: argparse.Namespace) -> None:
    """Simulate the data set unless ``--data`` holds one made with the same parameters (it is cached)."""
    if all(any(args.data.glob(f"{table}.*")) for table in ("messages", "customers", "events")):
        params = args.data / "ground_truth" / "params.json"
        held = json.loads(params.read_text()) if params.exists() else {}
        wanted = {"customers": args.customers, "days": args.days, "messages": args.messages, "seed": args.seed}
        if held and {k: held.get(k) for k in wanted} != wanted:
            raise ValueError(f"{args.data} holds a data set made with {({k: held.get(k) for k in wanted})}, not "
                             f"{wanted}: pass another --data or remove it")
        return
    started = time.perf_counter()
    subprocess.run([str(Path(sys.executable).with_name("nbm")), "simulate", "--out", str(args.data),
                    "--customers", str(args.customers), "--days", str(args.days), "--messages", str(args.messages),
                    "--seed", str(args.seed)], check=True, stdout=subprocess.DEVNULL)
    print(f"features: simulated {args.data} in {time.perf_counter() - started:.1f} s", flush=True)


def _load(data_dir: str) -> tuple[Settings, Dataset]:
    settings = load_settings()
    return settings, load_dataset(data_dir, settings.validation)


def _end_ns(data_dir: str, events: pd.DataFrame) -> int:
    """The simulator's end if it left its parameters, else just after the last event."""
    params = Path(data_dir) / "ground_truth" / "params.json"
    if params.exists():
        return int(pd.Timestamp(json.loads(params.read_text())["end"]).value)
    return int(events["ts"].max().value) + 1


def _memory_gb(field: str) -> float:
    """``VmHWM`` (peak) or ``VmRSS`` (now) of this process.

    Not ru_maxrss: a spawned child inherits its parent's peak through exec, so a child of a parent that
    holds the data would report at least the parent's size.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024**2
    except OSError:
        pass
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # elsewhere: the best there is
    return kib / (1024**3 if sys.platform == "darwin" else 1024**2)


# ---- the matrix and the snapshot, each in a child process ----------------------------------------------

def _training_matrix(data_dir: str) -> dict[str, float]:
    """One row per logged impression at its own time: the matrix the ranker is trained on."""
    settings, data = _load(data_dir)
    data_gb = _memory_gb("VmRSS")
    spec = FeatureSpec.fit(data.messages, data.customers, settings.features)
    impressions = data.events[data.events["event_type"] == "impression"]
    requests = pd.DataFrame({"customer_id": impressions["customer_id"].to_numpy(), "as_of": impressions["ts"].to_numpy(),
                             "message_id": impressions["message_id"].to_numpy()})
    requests = requests.sort_values(["customer_id", "as_of"], kind="stable", ignore_index=True)
    del impressions
    started = time.perf_counter()
    history = make_history(EventLog.from_events(data.events, spec.vocab), spec)
    # Features need only the log: the event frame is released once the log holds the events.
    data = Dataset(data.messages, data.customers, pd.DataFrame(), data.report)  # not a slice: it would keep the buffers
    release_freed_memory()
    return _build(data, spec, history, requests, started) | {"data_gb": data_gb}


def _serving_snapshot(data_dir: str, end_ns: int) -> dict[str, float]:
    """Customer-level features of every customer at the end of the data, from the state handed to serving."""
    settings, data = _load(data_dir)
    spec = FeatureSpec.fit(data.messages, data.customers, settings.features)
    log = EventLog.from_events(data.events, spec.vocab)
    end = pd.Timestamp(end_ns, tz="UTC")
    requests = pd.DataFrame({"customer_id": data.customers["customer_id"].to_numpy(), "as_of": end})
    started = time.perf_counter()
    state = FeatureState.at_cutoff(log, end, spec.settings.max_window_days)
    return _build(data, spec, make_history(state.log, spec), requests, started) | {"records": len(state.log)}


def _build(data: Dataset, spec: FeatureSpec, history: History, requests: pd.DataFrame, started: float) -> dict[str, float]:
    built = time.perf_counter()
    matrix = build_features(requests, history, CatalogTable.from_messages(data.messages, spec),
                            ProfileTable.from_customers(data.customers), spec, dtype=np.float32)
    done = time.perf_counter()
    return {"rows": matrix.values.shape[0], "cols": matrix.values.shape[1], "matrix_gb": matrix.values.nbytes / 1024**3,
            "history_s": built - started, "features_s": done - built, "peak_gb": _memory_gb("VmHWM")}


def _child_main(step: Callable[..., dict[str, float]], args: tuple, result: multiprocessing.Queue) -> None:
    try:
        result.put(("ok", step(*args)))
    except BaseException as exc:  # the parent prints it and exits non-zero
        traceback.print_exc()
        result.put(("error", f"{type(exc).__name__}: {exc}"))


def _in_child(step: Callable[..., dict[str, float]], *args: Any) -> dict[str, float]:
    context = multiprocessing.get_context("spawn")
    result = context.Queue()
    child = context.Process(target=_child_main, args=(step, args, result))
    child.start()
    outcome = None
    while outcome is None and (child.is_alive() or not result.empty()):
        try:
            outcome = result.get(timeout=1.0)
        except queue.Empty:
            continue
    child.join()
    if outcome is None:
        raise RuntimeError(f"child process died with exit code {child.exitcode} (-9: killed, out of memory?)")
    if outcome[0] != "ok":
        raise RuntimeError(f"in the child process: {outcome[1]}")
    return outcome[1]


# ---- three features by three engines ------------------------------------------------------------------

@dataclass(frozen=True)
class Engines:
    """The same events for each engine: nbm's log, a polars frame and a DuckDB table of integer codes."""

    spec: FeatureSpec
    log: EventLog
    log_s: float
    polars_events: Any
    duckdb: Any
    n_customers: int
    n_channels: int
    end_ns: int


def _engines(data: Dataset, settings: Settings, end_ns: int) -> Engines:
    import duckdb
    import polars as pl

    spec = FeatureSpec.fit(data.messages, data.customers, settings.features)
    events = data.events
    # One customer vocabulary for all three engines, so that their answers line up row by row.
    customers = Vocabulary(tuple(sorted(set(data.customers["customer_id"]) | set(pd.unique(events["customer_id"])))))
    started = time.perf_counter()
    log = EventLog.from_events(events, spec.vocab, customers=customers)
    log_s = time.perf_counter() - started
    # Rows stay in the loader's ts order: polars and DuckDB are not told, so it only helps their caches.
    polars_events = pl.DataFrame({
        "customer": customers.encode(events["customer_id"]).astype(np.int32),
        "ts": events["ts"].array.asi8.astype(np.int64),
        "event_type": pd.Categorical(events["event_type"], categories=list(EVENT_CODE)).codes.astype(np.int8),
        "channel": spec.vocab.channels.encode(events["channel"]).astype(np.int8),
    })
    con = duckdb.connect()
    con.register("polars_events", polars_events.to_arrow())
    con.execute("CREATE TABLE events AS SELECT * FROM polars_events")  # native storage, as a real table would be
    con.unregister("polars_events")
    return Engines(spec, log, log_s, polars_events, con, len(customers), len(spec.vocab.channels), end_ns)


def _pivot(customer: np.ndarray, channel: np.ndarray, count: np.ndarray, e: Engines) -> np.ndarray:
    """Grouped (customer, channel, count) rows into the dense customer x channel matrix nbm returns."""
    matrix = np.zeros((e.n_customers, e.n_channels), dtype=np.float64)
    matrix[customer, channel] = count
    return matrix


def _nbm_channel_counts(history: History, e: Engines) -> np.ndarray:
    requests = Requests(np.arange(e.n_customers, dtype=np.int64), np.full(e.n_customers, e.end_ns, dtype=np.int64))
    if hasattr(history, "count_by"):
        return history.count_by(("impression",), requests, window_days=WINDOW_DAYS, by="channel")
    return np.column_stack([history.count(("impression",), requests, window_days=WINDOW_DAYS, by="channel", sub=c)
                            for c in range(e.n_channels)])


def _polars_channel_counts(e: Engines) -> np.ndarray:
    import polars as pl

    start = e.end_ns - WINDOW_DAYS * NS_PER_DAY
    grouped = (e.polars_events.lazy()
               .filter((pl.col("event_type") == IMPRESSION) & (pl.col("channel") >= 0)
                       & (pl.col("ts") >= start) & (pl.col("ts") < e.end_ns))
               .group_by("customer", "channel").agg(pl.len()).collect())
    return _pivot(grouped["customer"].to_numpy(), grouped["channel"].to_numpy(), grouped["len"].to_numpy(), e)


def _duckdb_channel_counts(e: Engines) -> np.ndarray:
    grouped = e.duckdb.execute(
        "SELECT customer, channel, count(*) AS n FROM events "
        "WHERE event_type = $type AND channel >= 0 AND ts >= $start AND ts < $end GROUP BY customer, channel",
        {"type": IMPRESSION, "start": e.end_ns - WINDOW_DAYS * NS_PER_DAY, "end": e.end_ns}).fetchnumpy()
    return _pivot(grouped["customer"], grouped["channel"], grouped["n"], e)


def _exposures(log: EventLog) -> Requests:
    """Every impression as a request at its own time, in the log's (customer, ts) order."""
    mine = log.event_type == IMPRESSION
    return Requests(log.customer[mine].astype(np.int64), log.ts[mine])


def _nbm_rolling_count(history: History, e: Engines) -> np.ndarray:
    return per_partition(history, _exposures(e.log),
                         lambda part, requests: part.count(("impression",), requests, window_days=WINDOW_DAYS), CHUNK_ROWS)


def _polars_rolling_count(e: Engines) -> Keyed:
    import polars as pl

    # closed="left" makes the window [ts - 30 d, ts): an impression never counts itself or its ties.
    out = (e.polars_events.lazy().filter(pl.col("event_type") == IMPRESSION)
           .select("customer", "ts", one=pl.lit(1, pl.UInt32))
           .with_columns(n=pl.col("one").rolling_sum_by("ts", window_size=f"{WINDOW_DAYS * NS_PER_DAY}i",
                                                        closed="left").over("customer"))
           .collect())
    return out["customer"].to_numpy(), out["ts"].to_numpy(), out["n"].to_numpy()


def _duckdb_rolling_count(e: Engines) -> Keyed:
    # Times are integer ns, so "1 PRECEDING" ends the frame just before ts: ties and the row itself are out.
    out = e.duckdb.execute(
        f"SELECT customer, ts, count(*) OVER (PARTITION BY customer ORDER BY ts RANGE BETWEEN "
        f"{WINDOW_DAYS * NS_PER_DAY} PRECEDING AND 1 PRECEDING) AS n FROM events WHERE event_type = $type",
        {"type": IMPRESSION}).fetchnumpy()
    return out["customer"], out["ts"], out["n"]


def _nbm_days_since_purchase(history: History, e: Engines) -> np.ndarray:
    return per_partition(history, _exposures(e.log), lambda part, requests: part.days_since_last(("purchase",), requests),
                         CHUNK_ROWS)


def _polars_days_since_purchase(e: Engines) -> Keyed:
    import polars as pl

    events = e.polars_events.lazy()
    impressions = events.filter(pl.col("event_type") == IMPRESSION).select("customer", "ts")
    purchases = events.filter(pl.col("event_type") == PURCHASE).select("customer", purchase_ts=pl.col("ts"))
    # Both sides are in ts order (the loader sorts events); polars cannot verify that within "by" groups.
    out = (impressions.join_asof(purchases, left_on="ts", right_on="purchase_ts", by="customer", strategy="backward",
                                 allow_exact_matches=False, check_sortedness=False)
           .with_columns(days=((pl.col("ts") - pl.col("purchase_ts")) / NS_PER_DAY).fill_null(float("nan")))
           .collect())
    return out["customer"].to_numpy(), out["ts"].to_numpy(), out["days"].to_numpy()


def _duckdb_days_since_purchase(e: Engines) -> Keyed:
    out = e.duckdb.execute(
        f"SELECT i.customer, i.ts, coalesce((i.ts - p.ts) / {NS_PER_DAY}, 'NaN'::DOUBLE) AS days "
        "FROM (SELECT customer, ts FROM events WHERE event_type = $imp) i "
        "ASOF LEFT JOIN (SELECT customer, ts FROM events WHERE event_type = $pur) p "
        "ON i.customer = p.customer AND i.ts > p.ts", {"imp": IMPRESSION, "pur": PURCHASE}).fetchnumpy()
    return out["customer"], out["ts"], out["days"]


@dataclass(frozen=True)
class Comparison:
    name: str
    nbm: Callable[[History, Engines], np.ndarray]
    polars: Callable[[Engines], Any]
    duckdb: Callable[[Engines], Any]
    per_exposure: bool  # answers are Keyed rows (any order), not a customer x channel matrix
    tolerance: float


COMPARISONS = (
    Comparison("snapshot impressions 30d by customer x channel", _nbm_channel_counts, _polars_channel_counts,
               _duckdb_channel_counts, per_exposure=False, tolerance=0.0),
    Comparison("rolling 30d count per exposure", _nbm_rolling_count, _polars_rolling_count, _duckdb_rolling_count,
               per_exposure=True, tolerance=0.0),
    Comparison("as-of days since last purchase per exposure", _nbm_days_since_purchase, _polars_days_since_purchase,
               _duckdb_days_since_purchase, per_exposure=True, tolerance=1e-9),
)


def _best_of(repeats: int, run: Callable[[Any], Any], setup: Callable[[], Any] = lambda: None) -> tuple[float, float, Any]:
    """Best times of ``setup`` and of ``run(setup())`` over ``repeats`` fresh setups, and the last answer."""
    best_setup = best_run = float("inf")
    answer = None
    for _ in range(repeats):
        answer = None  # free the previous answer before the next run
        gc.collect()  # so that collecting earlier garbage does not land inside the timing
        started = time.perf_counter()
        prepared = setup()
        ready = time.perf_counter()
        answer = run(prepared)
        best_setup, best_run = min(best_setup, ready - started), min(best_run, time.perf_counter() - ready)
    return best_setup, best_run, answer


def _check_equal(c: Comparison, engine: str, expected: np.ndarray, got: Any, e: Engines) -> None:
    if c.per_exposure:
        # Rows sorted by (customer, ts) must be exactly nbm's requests; exposures tied on both get equal answers.
        customer, ts, value = got
        order = np.lexsort((ts, customer))
        exposures = _exposures(e.log)
        if not (np.array_equal(customer[order], exposures.customer) and np.array_equal(ts[order], exposures.as_of)):
            raise AssertionError(f"{c.name}: {engine} answered for other exposures than nbm")
        got = value[order]
    expected, got = np.asarray(expected, dtype=np.float64), np.asarray(got, dtype=np.float64)
    if expected.shape != got.shape:
        raise AssertionError(f"{c.name}: {engine} answered {got.shape} values, nbm {expected.shape}")
    bad = ~(np.isnan(expected) & np.isnan(got)) & ~(np.abs(expected - got) <= c.tolerance)
    if bad.any():
        at = np.unravel_index(int(np.argmax(bad)), bad.shape)
        raise AssertionError(f"{c.name}: {engine} differs from nbm in {int(bad.sum()):,} values, "
                            f"e.g. at {tuple(int(i) for i in at)}: nbm {expected[at]!r}, {engine} {got[at]!r}")


def _compare(c: Comparison, e: Engines, repeats: int) -> tuple[str, bool]:
    """Time each engine (best of ``repeats``), check the answers agree; the line to print, and the goal met?"""
    # A fresh History for each run: it memoises its indexes, and building them is part of the query. Its
    # look-up threads are kept across the runs, as polars and DuckDB keep their thread pools.
    workers = LookupThreads(e.spec.settings.num_threads)
    history_s, nbm_s, expected = _best_of(repeats, lambda history: c.nbm(history, e), lambda: make_history(e.log, e.spec, workers))
    _, polars_s, polars_answer = _best_of(repeats, lambda _: c.polars(e))
    _, duckdb_s, duckdb_answer = _best_of(repeats, lambda _: c.duckdb(e))
    _check_equal(c, "polars", expected, polars_answer, e)
    _check_equal(c, "duckdb", expected, duckdb_answer, e)
    ratio = nbm_s / min(polars_s, duckdb_s)
    size = f"{len(expected):,} rows" if c.per_exposure else f"{expected.shape[0]:,} x {expected.shape[1]}"
    return (f"features: {c.name} ({size}): nbm {nbm_s:.2f} s ({nbm_s + history_s + e.log_s:.1f} s with log+history), "
            f"polars {polars_s:.2f} s, duckdb {duckdb_s:.2f} s -> ratio {ratio:.2f} (goal <= {GOAL_RATIO})"
            f"{'' if ratio <= GOAL_RATIO else ' MISSED'}"), ratio <= GOAL_RATIO


# ---- main ---------------------------------------------------------------------------------------------

def _training_line(data_dir: str) -> tuple[str, bool]:
    m = _in_child(_training_matrix, data_dir)
    met = m["peak_gb"] < GOAL_TRAINING_RSS_GB
    return (f"features: training matrix {m['rows']:,} rows x {m['cols']} cols in {m['history_s'] + m['features_s']:.1f} s "
            f"(log+history {m['history_s']:.1f} s, features {m['features_s']:.1f} s, {m['rows'] / m['features_s']:,.0f} "
            f"rows/s), peak RSS {m['peak_gb']:.2f} GB (goal < {GOAL_TRAINING_RSS_GB:.0f} GB){'' if met else ' MISSED'} incl. "
            f"the {m['matrix_gb']:.2f} GB matrix; the {m['data_gb']:.2f} GB of loaded data is released once the event log "
            f"holds it"), met


def _snapshot_line(data_dir: str, end_ns: int) -> tuple[str, bool]:
    s = _in_child(_serving_snapshot, data_dir, end_ns)
    return (f"features: serving snapshot {s['rows']:,} customers x {s['cols']} cols in {s['history_s'] + s['features_s']:.1f} s "
            f"(state+history {s['history_s']:.1f} s, {s['records']:,} records; features {s['features_s']:.1f} s, "
            f"{s['rows'] / s['features_s']:,.0f} rows/s), peak RSS {s['peak_gb']:.2f} GB incl. loaded data"), True


def _step(name: str, run: Callable[[], tuple[str, bool]]) -> str:
    """Run one measured step and print its line: "met", "missed" or "failed" (which exits non-zero)."""
    try:
        line, met = run()
    except Exception as exc:
        print(f"features: {name}: FAILED: {type(exc).__name__}: {exc}", flush=True)
        return "failed"
    print(line, flush=True)
    return "met" if met else "missed"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--customers", type=int, default=200_000)
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--messages", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--data", type=Path, default=REPO / ".nbm" / "bench" / "world-200k")
    parser.add_argument("--repeats", type=int, default=3, help="best of this many runs of each feature query")
    parser.add_argument("--comparisons-only", action="store_true", help="skip the training matrix and the snapshot")
    args = parser.parse_args()
    data_dir = str(args.data)
    try:
        _ensure_dataset(args)
        started = time.perf_counter()
        settings, data = _load(data_dir)
        print(f"features: data {len(data.events):,} events, {len(data.customers):,} customers loaded and validated "
              f"in {time.perf_counter() - started:.1f} s", flush=True)
        end_ns = _end_ns(data_dir, data.events)
    except Exception as exc:
        print(f"features: data: FAILED: {type(exc).__name__}: {exc}")
        return 1

    outcomes = [] if args.comparisons_only else [_step("training matrix", lambda: _training_line(data_dir)),
                                                 _step("serving snapshot", lambda: _snapshot_line(data_dir, end_ns))]
    try:
        import duckdb
        import polars as pl

        engines = _engines(data, settings, end_ns)
        print(f"features: polars {pl.__version__}, duckdb {duckdb.__version__} on {os.cpu_count()} CPUs (nbm: {settings.features.num_threads} threads for look-ups); "
              f"nbm event log built in {engines.log_s:.1f} s; best of {args.repeats}", flush=True)
        outcomes += [_step(c.name, lambda c=c: _compare(c, engines, args.repeats)) for c in COMPARISONS]
    except Exception as exc:
        print(f"features: engine inputs: FAILED: {type(exc).__name__}: {exc}", flush=True)
        outcomes.append("failed")
    failed, missed = outcomes.count("failed"), outcomes.count("missed")
    print(f"features: {'FAILED' if failed else 'MISSED' if missed else 'PASS'} ({failed} steps failed, {missed} goals missed)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
