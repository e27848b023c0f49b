"""The vectorised "strictly before t" helpers agree with slow, obvious loops (ties included)."""

from __future__ import annotations

import numpy as np

from engine.simulate.point_in_time import count_before, earlier_same_key, last_before


def _random_log(seed: int, size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    # Few keys and few distinct times, so that equal times are common.
    return rng.integers(0, 5, size), rng.integers(0, 20, size).astype(np.int64) * 1_000, rng.normal(size=size)


def test_count_before_matches_a_loop() -> None:
    key, ts, _ = _random_log(1, 300)
    query_key, query_ts, _ = _random_log(2, 200)
    expected = [sum(1 for k, t in zip(key, ts) if k == qk and t < qt) for qk, qt in zip(query_key, query_ts)]
    assert count_before(key, ts, query_key, query_ts).tolist() == expected


def test_last_before_matches_a_loop() -> None:
    key, ts, value = _random_log(3, 300)
    order = np.argsort(ts, kind="stable")  # a log sorted by time: among equal times the later row wins
    key, ts, value = key[order], ts[order], value[order]
    query_key, query_ts, _ = _random_log(4, 200)
    expected = []
    for qk, qt in zip(query_key, query_ts):
        found = [v for k, t, v in zip(key, ts, value) if k == qk and t < qt]
        expected.append(found[-1] if found else np.nan)
    np.testing.assert_array_equal(last_before(key, ts, value, query_key, query_ts), np.array(expected))


def test_earlier_same_key_matches_a_loop() -> None:
    key, ts, _ = _random_log(5, 300)
    expected = [sum(1 for k, t in zip(key, ts) if k == key[i] and t < ts[i]) for i in range(len(key))]
    assert earlier_same_key(key, ts).tolist() == expected


def test_empty_inputs() -> None:
    empty = np.empty(0, dtype=np.int64)
    assert count_before(empty, empty, np.array([1]), np.array([5])).tolist() == [0]
    assert np.isnan(last_before(empty, empty, np.empty(0), np.array([1]), np.array([5]))).all()
    assert earlier_same_key(empty, empty).tolist() == []
