"""History queries: window edges by hand, and every query against a slow, obvious loop."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.features.history import NS_PER_DAY, History, Requests
from engine.features.partitions import customer_partitions, per_partition
from engine.features.log import CatalogVocabularies, EventLog
from engine.features.sorting import unique_sorted
from engine.features.timecode import GranularTimeCode, RankTimeCode
from engine.features.vocab import Vocabulary
from engine.features.workers import LookupThreads

VOCAB = CatalogVocabularies(Vocabulary(("email", "sms")), Vocabulary(("food", "travel")), Vocabulary(("m1", "m2", "m3")))
T0 = pd.Timestamp("2026-03-01T12:00:00Z")


def _history(frame: pd.DataFrame, *, max_window_days: int = 30, half_life_days: float = 7.0, coding: str = "auto") -> History:
    log = EventLog.from_events(frame, VOCAB)
    # "auto" lets History pick (whole seconds here: the granular code); "rank" forces the rank code.
    time_code = RankTimeCode(unique_sorted(log.ts)) if coding == "rank" else None
    return History(log, {"channel": 2, "topic": 2, "message": 3}, max_window_days=max_window_days,
                   half_life_days=half_life_days, time_code=time_code)


def _requests(history: History, customer_ids: list[str], as_of: list[pd.Timestamp]) -> Requests:
    codes = history.log.customers.encode(customer_ids).astype(np.int64)
    return Requests(codes, np.array([t.value for t in as_of], dtype=np.int64))


def _frame(rows: list[tuple[pd.Timestamp, str, str, str | None, str | None, str | None, float | None]]) -> pd.DataFrame:
    from tests.builders import events_frame

    return events_frame(
        [
            {"ts": ts.isoformat(), "customer_id": c, "event_type": e, "channel": ch, "topic": tp, "message_id": m, "value": v}
            for ts, c, e, ch, tp, m, v in rows
        ]
    )


def test_window_edges_start_included_as_of_excluded():
    day = pd.Timedelta(days=1)
    ns = pd.Timedelta(1, "ns")
    frame = _frame(
        [
            (T0 - 7 * day - ns, "c1", "visit", None, None, None, None),  # just outside the 7-day window
            (T0 - 7 * day, "c1", "visit", None, None, None, None),  # exactly at its start: inside
            (T0 - ns, "c1", "visit", None, None, None, None),  # just before as_of: inside
            (T0, "c1", "visit", None, None, None, None),  # exactly at as_of: never counted
        ]
    )
    h = _history(frame)
    r = _requests(h, ["c1"], [T0])
    assert h.count(("visit",), r, window_days=7)[0] == 2
    assert h.count(("visit",), r)[0] == 3
    assert h.days_since_last(("visit",), r)[0] == pytest.approx(1 / NS_PER_DAY)
    later = _requests(h, ["c1"], [T0 + ns])
    assert h.count(("visit",), later, window_days=7)[0] == 2  # the earliest one leaves as the window slides


def test_unknown_customer_and_unknown_subkey_find_nothing():
    frame = _frame([(T0 - pd.Timedelta(hours=1), "c1", "impression", "email", "food", "m1", None)])
    h = _history(frame)
    r = _requests(h, ["c1", "nobody"], [T0, T0])
    assert list(h.count(("impression",), r)) == [1, 0]
    assert list(h.count(("impression",), r, by="message", sub=np.array([-1, 0]))) == [0, 0]
    assert np.isnan(h.days_since_last(("impression",), r)[1])


def test_last_value_is_the_latest_before_as_of():
    frame = _frame(
        [
            (T0 - pd.Timedelta(days=20), "c1", "survey", None, None, None, 9.0),
            (T0 - pd.Timedelta(days=2), "c1", "survey", None, None, None, 3.0),
            (T0, "c1", "survey", None, None, None, 10.0),
        ]
    )
    h = _history(frame)
    r = _requests(h, ["c1", "c1"], [T0, T0 - pd.Timedelta(days=5)])
    assert list(h.last_value(("survey",), r)) == [3.0, 9.0]


def test_decayed_count_halves_per_half_life():
    frame = _frame(
        [
            (T0 - pd.Timedelta(days=7), "c1", "visit", None, "travel", None, None),
            (T0 - pd.Timedelta(days=14), "c1", "visit", None, "travel", None, None),
            (T0 - pd.Timedelta(days=31), "c1", "visit", None, "travel", None, None),  # outside the window
        ]
    )
    h = _history(frame, max_window_days=30, half_life_days=7)
    r = _requests(h, ["c1"], [T0])
    assert h.decayed_count(("visit",), r, window_days=30, by="topic", sub=1)[0] == pytest.approx(0.5 + 0.25, abs=1e-9)


# ---- against a naive loop on a random log -------------------------------------------------------


def _random_log(seed: int, n: int = 600, offset_ns: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    types = np.array(["visit", "impression", "click", "purchase", "survey"])
    start = T0 - pd.Timedelta(days=60)
    # Whole minutes, many ties, so equal timestamps and window edges are exercised.
    minutes = rng.integers(0, 60 * 24 * 60, size=n)
    rows = []
    for i in range(n):
        kind = str(types[rng.integers(0, len(types))])
        rows.append(
            (
                start + pd.Timedelta(minutes=int(minutes[i])) + pd.Timedelta(offset_ns, "ns"),
                f"c{rng.integers(0, 6)}",
                kind,
                [None, "email", "sms"][rng.integers(0, 3)],
                [None, "food", "travel"][rng.integers(0, 3)],
                [None, "m1", "m2", "m3"][rng.integers(0, 4)],
                float(rng.integers(0, 11)) if kind in ("survey", "purchase") else None,
            )
        )
    return _frame(rows)


def _naive(frame: pd.DataFrame, customer: str, as_of: pd.Timestamp, types, window_days, column, sub_value):
    rows = frame[(frame["customer_id"] == customer) & frame["event_type"].isin(types) & (frame["ts"] < as_of)]
    if column is not None:
        rows = rows[rows[column] == sub_value]
    if window_days is not None:
        rows = rows[rows["ts"] >= as_of - pd.Timedelta(days=window_days)]
    return rows


@pytest.mark.parametrize(("seed", "offset_ns", "coding", "unit_ns"), [
    (1, 0, "auto", 10**9),  # whole minutes: coded in seconds
    (2, 0, "auto", 10**9),
    (3, 7, "auto", 1),  # 7 ns past each minute: only nanoseconds divide every time
    (1, 0, "rank", None),  # the fallback for key spaces too large for granular codes
    (3, 7, "rank", None),
])
def test_queries_match_a_naive_loop(seed, offset_ns, coding, unit_ns):
    frame = _random_log(seed, offset_ns=offset_ns)
    h = _history(frame, max_window_days=30, half_life_days=5, coding=coding)
    assert (h.time_code.unit_ns if isinstance(h.time_code, GranularTimeCode) else None) == unit_ns
    rng = np.random.default_rng(seed + 100)
    customers = [f"c{i}" for i in rng.integers(0, 7, size=40)]  # c6 never appears
    # Some requests exactly at event times, to test the strict "before".
    as_of = [frame["ts"].iloc[rng.integers(0, len(frame))] if i % 2 else T0 - pd.Timedelta(minutes=int(rng.integers(0, 86400))) for i in range(40)]
    r = _requests(h, customers, as_of)
    cases = [
        (("visit",), None, "customer", None, None),
        (("impression", "click"), 7, "customer", None, None),
        (("impression",), 30, "channel", "channel", ["email", "sms"]),
        (("visit", "click", "purchase"), 30, "topic", "topic", ["food", "travel"]),
        (("impression",), None, "message", "message_id", ["m1", "m2", "m3"]),
    ]
    for types, window, by, column, names in cases:
        for code in range(len(names) if names else 1):
            sub = None if names is None else code
            counts = h.count(types, r, window_days=window, by=by, sub=sub)
            since = h.days_since_last(types, r, by=by, sub=sub)
            for i, (c, t) in enumerate(zip(customers, as_of)):
                rows = _naive(frame, c, t, types, window, column, None if names is None else names[code])
                assert counts[i] == len(rows)
                everything = _naive(frame, c, t, types, None, column, None if names is None else names[code])
                expected = (t - everything["ts"].max()) / pd.Timedelta(days=1) if len(everything) else np.nan
                np.testing.assert_allclose(since[i], expected, rtol=1e-12)
    # The wide queries answer every channel or topic at once and must agree with the keyed ones.
    np.testing.assert_array_equal(
        h.count_by(("impression",), r, window_days=30, by="channel"),
        np.stack([h.count(("impression",), r, window_days=30, by="channel", sub=c) for c in range(2)], axis=1),
    )
    np.testing.assert_array_equal(
        h.count_by(("visit", "click", "purchase"), r, window_days=7, by="topic"),
        np.stack([h.count(("visit", "click", "purchase"), r, window_days=7, by="topic", sub=t) for t in range(2)], axis=1),
    )
    np.testing.assert_array_equal(
        h.decayed_count_by(("visit", "click", "purchase"), r, window_days=30, by="topic"),
        np.stack([h.decayed_count(("visit", "click", "purchase"), r, window_days=30, by="topic", sub=t) for t in range(2)], axis=1),
    )
    sums = h.value_sum(("purchase",), r, window_days=30)
    decayed = h.decayed_count(("visit", "click", "purchase"), r, window_days=30, by="topic", sub=1)
    last = h.last_value(("survey",), r)
    for i, (c, t) in enumerate(zip(customers, as_of)):
        rows = _naive(frame, c, t, ("purchase",), 30, None, None)
        assert sums[i] == pytest.approx(rows["value"].fillna(0).sum())
        rows = _naive(frame, c, t, ("visit", "click", "purchase"), 30, "topic", "travel")
        ages = (t - rows["ts"]) / pd.Timedelta(days=1)
        assert decayed[i] == pytest.approx(float(np.sum(0.5 ** (ages / 5))), abs=1e-7)
        rows = _naive(frame, c, t, ("survey",), None, None, None)
        expected = rows["value"].iloc[-1] if len(rows) else np.nan
        np.testing.assert_equal(last[i], expected)


@pytest.mark.parametrize("coding", ["auto", "rank"])
def test_count_by_at_one_as_of_matches_the_general_path(coding):
    # A serving snapshot asks every customer at one instant; count_by then scans the window instead of
    # indexing all history. Its answer must equal the keyed counts, also for an unknown customer.
    frame = _random_log(4)
    h = _history(frame, coding=coding)
    customers = ["c0", "c1", "c2", "c3", "c4", "c5", "nobody", "c1"]
    for as_of in (T0 - pd.Timedelta(days=3), frame["ts"].iloc[17]):  # the second is exactly an event's time
        r = _requests(h, customers, [as_of] * len(customers))
        for types, window, by, width in ((("impression",), 7, "channel", 2), (("visit", "click"), 30, "topic", 2)):
            wide = h.count_by(types, r, window_days=window, by=by)
            keyed = np.stack([h.count(types, r, window_days=window, by=by, sub=s) for s in range(width)], axis=1)
            np.testing.assert_array_equal(wide, keyed)
            assert wide[6].sum() == 0
            names = ["email", "sms"] if by == "channel" else ["food", "travel"]
            expected = [len(_naive(frame, c, as_of, types, window, by, name)) for c in customers for name in names]
            assert wide.ravel().tolist() == expected
    only_unknown = _requests(h, ["nobody", "nobody"], [T0, T0])
    assert h.count_by(("impression",), only_unknown, window_days=7, by="channel").tolist() == [[0.0, 0.0], [0.0, 0.0]]


def test_a_partition_of_customers_answers_as_the_whole_history():
    frame = _random_log(5)
    h = _history(frame)
    part = h.for_customers(*h.log.customers.encode(["c2", "c4"]).tolist())
    # Customers c2..c4 (codes in between) keep exactly their own events; the rest are outside.
    assert len(part.log) == int(frame["customer_id"].isin(["c2", "c3", "c4"]).sum())
    customers = ["c2", "c3", "c4", "c3"]
    as_of = [T0, T0 - pd.Timedelta(days=2), frame["ts"].iloc[40], T0 - pd.Timedelta(days=20)]
    r = _requests(h, customers, as_of)
    for query in (lambda x: x.count(("visit", "click"), r, window_days=7), lambda x: x.days_since_last(("impression",), r),
                  lambda x: x.count_by(("impression",), r, window_days=30, by="channel"),
                  lambda x: x.decayed_count(("click",), r, window_days=30, by="topic", sub=1),
                  lambda x: x.value_sum(("purchase",), r, window_days=30)):
        np.testing.assert_array_equal(query(part), query(h))


def test_customer_partitions_split_sorted_requests_into_runs_over_their_own_customers():
    frame = _random_log(5)
    h = _history(frame)
    codes = h.log.customers.encode(["c0", "c0", "c1", "c3", "c3", "c5"]).astype(np.int64)
    runs = list(customer_partitions(h, codes, 2))
    # Runs of 2 requests: (c0, c0), (c1, c3), (c3, c5); each History holds its customers' events only.
    assert [(start, stop) for start, stop, _ in runs] == [(0, 2), (2, 4), (4, 6)]
    expected_customers = [{"c0"}, {"c1", "c2", "c3"}, {"c3", "c4", "c5"}]
    for (_, _, part), wanted in zip(runs, expected_customers):
        assert len(part.log) == int(frame["customer_id"].isin(wanted).sum())
    # No requests: one empty run over the whole history.
    empty = list(customer_partitions(h, np.zeros(0, dtype=np.int64), 2))
    assert len(empty) == 1 and empty[0][:2] == (0, 0) and empty[0][2] is h


def test_a_partition_counts_its_keys_from_its_first_customer_so_exact_time_codes_still_fit():
    # 60 customers with events 3 years apart, to the millisecond, and a wide key space: over the whole log
    # key x time code would pass 2**62, so History falls back to ranking times; a partition of a few
    # customers counts keys from its first one, keeps the arithmetic code, and answers the same.
    day = pd.Timedelta(days=1)
    rows = [(T0 - day - 3 * 365 * day * (i % 2) + pd.Timedelta(i, "ms"), f"c{i:02d}", "visit", None, None, None, None)
            for i in range(60)]
    log = EventLog.from_events(_frame(rows), VOCAB)
    whole = History(log, {"channel": 2, "topic": 2, "message": 10**6}, max_window_days=30, half_life_days=7.0)
    assert isinstance(whole.time_code, RankTimeCode)
    first, last = log.customers.encode(["c50", "c53"]).tolist()
    part = whole.for_customers(first, last)
    assert part.customer_base == first and isinstance(part.time_code, GranularTimeCode)
    r = _requests(whole, ["c50", "c51", "c53", "c52", "nobody"], [T0] * 5)
    for h in (whole, part):
        assert h.count(("visit",), r).tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]
        assert h.count(("visit",), r, window_days=30).tolist() == [1.0, 0.0, 0.0, 1.0, 0.0]  # odd ones: 3 years ago
        np.testing.assert_allclose(h.days_since_last(("visit",), r)[[0, 3]], [1 - 50 / 86_400_000, 1 - 52 / 86_400_000])


@pytest.mark.parametrize("threads", [1, 2])
def test_a_query_per_partition_answers_as_over_the_whole_history(threads):
    frame = _random_log(8)
    h = _history(frame)
    h.workers = LookupThreads(threads)
    customers = sorted(f"c{i}" for i in range(6) for _ in range(5)) + ["nobody"]
    as_of = [T0 - pd.Timedelta(days=int(d)) for d in np.random.default_rng(0).integers(0, 40, len(customers))]
    r = _requests(h, customers, as_of)
    order = np.lexsort((r.as_of, r.customer))  # "nobody" (-1) first: sorted by customer code
    r = Requests(r.customer[order], r.as_of[order])
    for query in (lambda x, q: x.count(("impression",), q, window_days=7), lambda x, q: x.days_since_last(("purchase",), q)):
        np.testing.assert_array_equal(per_partition(h, r, query, rows=4), query(h, r))
