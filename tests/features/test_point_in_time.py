"""No leakage and no train/serve skew.

Offline: features from the whole history. Online: from the state saved at a cutoff plus live events.
For requests after the cutoff (days after it, with live events in between) both must agree to 1e-9.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import FeatureSettings
from engine.features.build import CatalogTable, ProfileTable, build_features, make_history
from engine.features.log import EventLog, compact_before
from engine.features.spec import FeatureSpec
from engine.features.state import FeatureState, StaleRequestError
from tests.builders import events_frame, messages_frame

SETTINGS = FeatureSettings(windows_days=(7, 30, 60), affinity_half_life_days=10)
START = pd.Timestamp("2026-01-01T00:00:00Z")
MESSAGES = messages_frame(
    [
        {"message_id": f"m{i}", "channel": ["email", "sms", "push"][i % 3], "topic": ["food", "travel", "home", "sport"][i % 4],
         "journey_stage": ["awareness", "consideration", "purchase", "loyalty"][i % 4], "valid_from": "2026-01-15T00:00:00Z" if i % 5 == 0 else None}
        for i in range(12)
    ]
)
CUSTOMERS = pd.DataFrame({"customer_id": [f"c{i}" for i in range(25)], "segment": ["a", "b", "c", "a", "b"] * 5})


def _world(seed: int, n: int = 4000, days: int = 200) -> pd.DataFrame:
    """Random events of 30 customers (5 without a profile) over ``days``, timestamps to the second."""
    rng = np.random.default_rng(seed)
    kinds = rng.choice(["visit", "impression", "open", "click", "conversion", "purchase", "survey", "support", "complaint"], size=n,
                       p=[0.3, 0.3, 0.1, 0.08, 0.02, 0.08, 0.04, 0.04, 0.04])
    message = rng.integers(0, 12, size=n)
    rows = []
    for i in range(n):
        kind = str(kinds[i])
        on_message = kind in ("impression", "open", "click", "conversion")
        m = int(message[i])
        rows.append({
            "ts": (START + pd.Timedelta(seconds=int(rng.integers(0, days * 86400)))).isoformat(),
            "customer_id": f"c{rng.integers(0, 30)}",
            "event_type": kind,
            "message_id": f"m{m}" if on_message else None,
            "channel": MESSAGES["channel"].iloc[m] if on_message else None,
            "topic": MESSAGES["topic"].iloc[m] if on_message else str(rng.choice(["food", "travel", "home", "sport", "other"])),
            "value": float(rng.integers(0, 11)) if kind == "survey" else (float(rng.integers(100, 20000)) / 100 if kind == "purchase" else None),
        })
    return events_frame(rows)


def _features(events: pd.DataFrame | None, requests: pd.DataFrame, spec: FeatureSpec, *, log: EventLog | None = None) -> pd.DataFrame:
    log = log if log is not None else EventLog.from_events(events, spec.vocab)
    matrix = build_features(requests, make_history(log, spec), CatalogTable.from_messages(MESSAGES, spec),
                            ProfileTable.from_customers(CUSTOMERS), spec, dtype=np.float64)
    return matrix.to_frame()


@pytest.fixture(scope="module")
def spec() -> FeatureSpec:
    return FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)


def _impression_requests(events: pd.DataFrame, after: pd.Timestamp | None = None) -> pd.DataFrame:
    impressions = events[events["event_type"] == "impression"]
    if after is not None:
        impressions = impressions[impressions["ts"] >= after]
    return pd.DataFrame({"customer_id": impressions["customer_id"].to_numpy(), "as_of": impressions["ts"].to_numpy(),
                         "message_id": impressions["message_id"].to_numpy()})


@pytest.mark.parametrize("seed", [0, 1])
def test_events_after_as_of_change_nothing(spec, seed):
    events = _world(seed)
    as_of = START + pd.Timedelta(days=120)
    requests = pd.DataFrame({"customer_id": [f"c{i}" for i in range(30)], "as_of": [as_of] * 30, "message_id": [f"m{i % 12}" for i in range(30)]})
    before = _features(events[events["ts"] < as_of], requests, spec)
    # Everything after as_of, and a copy of every event moved exactly onto as_of.
    moved = events[events["ts"] < as_of].assign(ts=as_of)
    after = pd.concat([events, moved], ignore_index=True).sort_values("ts", kind="stable")
    np.testing.assert_array_equal(_features(after, requests, spec).to_numpy(), before.to_numpy())


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_online_features_equal_offline_after_the_cutoff(tmp_path, spec, seed):
    events = _world(seed)
    cutoff = START + pd.Timedelta(days=170, hours=5)
    requests = _impression_requests(events, after=cutoff)  # 0-30 days after the cutoff
    assert len(requests) > 100
    offline = _features(events, requests, spec)

    full_log = EventLog.from_events(events, spec.vocab)
    state = FeatureState.at_cutoff(full_log, cutoff, SETTINGS.max_window_days)
    assert len(state.log) < int((events["ts"] < cutoff).sum())  # older history really was compacted
    state.save(tmp_path / "state.parquet")
    loaded = FeatureState.load(tmp_path / "state.parquet")
    live = EventLog.from_events(events[events["ts"] >= cutoff], spec.vocab)
    online = _features(None, requests, spec, log=loaded.with_live(live))

    assert list(online.columns) == list(offline.columns)
    np.testing.assert_allclose(online.to_numpy(), offline.to_numpy(), rtol=1e-9, atol=1e-9)


def test_online_features_one_customer_at_a_time_equal_offline(spec):
    events = _world(3)
    cutoff = START + pd.Timedelta(days=180)
    requests = _impression_requests(events, after=cutoff)
    offline = _features(events, requests, spec)
    state = FeatureState.at_cutoff(EventLog.from_events(events, spec.vocab), cutoff, SETTINGS.max_window_days)
    for customer in requests["customer_id"].unique()[:5]:
        mine = requests["customer_id"] == customer
        own_state = state.log.take(state.log.customer == state.log.customers.index(customer))
        live = EventLog.from_events(events[(events["ts"] >= cutoff) & (events["customer_id"] == customer)], spec.vocab)
        online = _features(None, requests[mine], spec, log=FeatureState(state.cutoff_ns, own_state).with_live(live))
        np.testing.assert_allclose(online.to_numpy(), offline[mine.to_numpy()].to_numpy(), rtol=1e-9, atol=1e-9)


def test_a_request_before_the_cutoff_is_refused(spec):
    events = _world(4, n=200)
    cutoff = START + pd.Timedelta(days=100)
    state = FeatureState.at_cutoff(EventLog.from_events(events, spec.vocab), cutoff, SETTINGS.max_window_days)
    state.check_as_of(np.array([cutoff.value]))
    with pytest.raises(StaleRequestError, match="as_of must be at or after the feature state's cutoff 2026-04-11T00:00:00"):
        state.check_as_of(np.array([cutoff.value - 1]))


def test_row_order_and_chunking_do_not_change_any_value(spec):
    events = _world(5)
    requests = _impression_requests(events).sample(frac=1.0, random_state=0).reset_index(drop=True)
    log = EventLog.from_events(events, spec.vocab)
    args = (make_history(log, spec), CatalogTable.from_messages(MESSAGES, spec), ProfileTable.from_customers(CUSTOMERS), spec)
    whole = build_features(requests, *args, dtype=np.float64, chunk_rows=10**9).values
    heard: list[tuple[int, int]] = []
    chunked = build_features(requests, *args, dtype=np.float64, chunk_rows=37, on_rows=lambda *done_total: heard.append(done_total)).values
    np.testing.assert_array_equal(chunked, whole)
    # A progress report after every chunk: 37 rows more each time, the last one complete.
    n = len(requests)
    assert heard == [(min(done, n), n) for done in range(37, n + 37, 37)]
    ordered = requests.sort_values(["customer_id", "as_of"], kind="stable")
    sorted_values = build_features(ordered.reset_index(drop=True), *args, dtype=np.float64, chunk_rows=50).values
    np.testing.assert_array_equal(sorted_values, whole[ordered.index.to_numpy()])


def test_windows_measure_elapsed_time_across_a_daylight_saving_change(spec):
    # Paris moves its clocks from 02:00 (+01:00) to 03:00 (+02:00) on 2026-03-29. An impression 23.5 real
    # hours before the request is 24.5 wall-clock hours earlier: a 1-day window counts it; one 24.5 real
    # hours before (25.5 on the wall) is out. Offsets are converted, never dropped.
    events = events_frame([
        {"ts": ts, "customer_id": "c1", "event_type": "impression", "message_id": "m1", "channel": "sms", "topic": "travel"}
        for ts in ("2026-03-28T10:30:00+01:00", "2026-03-28T11:30:00+01:00")
    ])
    as_of = pd.Timestamp("2026-03-29T12:00:00+02:00").tz_convert("UTC")
    requests = pd.DataFrame({"customer_id": ["c1"], "as_of": [as_of], "message_id": ["m1"]})
    row = _features(events, requests, spec).iloc[0]
    assert (row["impressions_1d"], row["impressions_7d"], row["sms_impressions_1d"]) == (1, 2, 1)
    assert row["days_since_last_impression"] == pytest.approx(23.5 / 24, abs=1e-12)


def test_compaction_keeps_the_log_sorted_by_customer_then_time(spec):
    log = EventLog.from_events(_world(3), spec.vocab)
    compacted = compact_before(log, int((START + pd.Timedelta(days=100)).value))
    assert 0 < len(compacted) < len(log)
    customer, ts = compacted.customer.astype(np.int64), compacted.ts
    ascending = (customer[1:] > customer[:-1]) | ((customer[1:] == customer[:-1]) & (ts[1:] >= ts[:-1]))
    assert ascending.all()
    assert compacted.weight.sum() == len(log)  # every event is still counted once
