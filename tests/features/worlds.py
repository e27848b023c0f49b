"""Worlds on which the feature matrix is pinned: a simulated one, and random hand-made histories with events
on window edges, at the decay epoch's start and at a request's own instant, compacted records weighing
2-4 events, several window settings and a catalog that shares offers.

:func:`column_digests` gives one SHA-256 per column of each world's matrix (float64, NaN as one NaN).
tests/features/data/matrix_digests.json holds the digests of the matrices built by the feature families
that the definitions replaced (commit b18a938): every column kept its name and its value to the bit.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from engine.config import FeatureSettings
from engine.features.build import CatalogTable, EncodedTables, FeatureMatrix, ProfileTable, build_features, make_history
from engine.features.log import EventLog
from engine.features.spec import FeatureSpec
from engine.simulate import simulate
from engine.simulate.params import SimulationParams
from engine.timeutil import to_ns
from tests.builders import events_frame, messages_frame

AS_OF = pd.Timestamp("2026-03-31T00:00:00Z")
TYPES = ("visit", "impression", "open", "click", "conversion", "purchase", "survey", "support", "complaint")
MESSAGES = messages_frame([
    {"message_id": "m1", "channel": "email", "topic": "travel", "journey_stage": "consideration", "value": 5.0,
     "valid_from": "2026-03-01T00:00:00Z", "offer_type": "discount"},
    {"message_id": "m2", "channel": "sms", "topic": "food", "journey_stage": "loyalty", "offer_type": "content"},
    {"message_id": "m3", "channel": "app", "topic": "travel", "journey_stage": "purchase", "offer_type": "discount"},
])
OFFER_MESSAGES = MESSAGES.assign(offer_id=["o1", None, "o1"])
CUSTOMERS = pd.DataFrame({"customer_id": [f"c{i}" for i in range(8)], "segment": ["premium", "mainstream"] * 4,
                          "signup_date": ["2026-01-30T00:00:00Z"] * 8})
WINDOWS = ((7, 30, 90), (7,), (1, 7), (14, 60), (7, 30, 90, 180))


def random_events(seed: int, messages: pd.DataFrame, customers: int, n: int, max_window: int) -> pd.DataFrame:
    """Events of every type over 120 days before AS_OF and a day after it, in whole minutes (ties), some
    exactly a window's length before AS_OF (the window's first instant) or at the start of the decay
    epoch AS_OF is in (where decayed counts split the window), about ``messages``."""
    rng = np.random.default_rng(seed)
    epoch_ns = max_window * 86_400_000_000_000
    anchor = pd.Timestamp("2000-01-01", tz="UTC").value
    epoch = pd.Timestamp(anchor + ((AS_OF.value - 1 - anchor) // epoch_ns) * epoch_ns, tz="UTC")
    rows = []
    for _ in range(n):
        kind = TYPES[rng.integers(0, len(TYPES))]
        edge = rng.random()
        ts = (AS_OF - pd.Timedelta(days=int(rng.choice([1, 7, 14, 30, 60, 90]))) if edge < 0.15 else epoch if edge < 0.25
              else AS_OF - pd.Timedelta(minutes=int(rng.integers(-1440, 120 * 1440))))
        message = messages.iloc[rng.integers(0, len(messages))] if rng.random() < 0.7 else None
        rows.append({"ts": ts.isoformat(), "customer_id": f"c{rng.integers(0, customers)}", "event_type": kind,
                     "channel": None if message is None else message["channel"], "topic": None if message is None else message["topic"],
                     "message_id": None if message is None else message["message_id"],
                     "value": float(rng.integers(0, 2000)) / 7 if kind in ("purchase", "survey") else None})
    return events_frame(rows)


def _requests(customer_ids, instants, message_ids) -> pd.DataFrame:
    rows = [(c, t, m) for c in customer_ids for t in instants for m in [*message_ids, None]]
    return pd.DataFrame(rows, columns=["customer_id", "as_of", "message_id"]).assign(
        as_of=lambda f: pd.to_datetime(f["as_of"], utc=True))


@dataclass(frozen=True, eq=False)
class World:
    name: str
    spec: FeatureSpec
    log: EventLog
    messages: pd.DataFrame
    customers: pd.DataFrame
    requests: pd.DataFrame

    def matrix(self) -> FeatureMatrix:
        """The numpy interpreter's matrix of every request, in float64."""
        return build_features(self.requests, make_history(self.log, self.spec), CatalogTable.from_messages(self.messages, self.spec),
                              ProfileTable.from_customers(self.customers), self.spec, dtype=np.float64)

    def encoded(self) -> tuple[EncodedTables, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The tables and the requests encoded as the decision engine passes them: customer codes of the
        log, as_of in ns, message codes (-1: none) and profile rows."""
        spec, requests = self.spec, self.requests
        profiles = ProfileTable.from_customers(self.customers)
        tables = EncodedTables.build(CatalogTable.from_messages(self.messages, spec), profiles, spec)
        return (tables, self.log.customers.encode(requests["customer_id"]).astype(np.int64), to_ns(requests["as_of"]),
                spec.vocab.messages.encode(requests["message_id"]).astype(np.int64),
                profiles.ids.encode(requests["customer_id"]).astype(np.int64))


def hand_made_world(seed: int, windows: tuple[int, ...], offers: bool = False) -> World:
    """A random history of a random history of 8 customers; compacted records weigh 2-4 events; requests at
    as_of, at an event's own instant and 3 h off, for every message and none."""
    settings = FeatureSettings(windows_days=windows, affinity_half_life_days=10.0 if len(windows) != 3 else 14.0)
    messages = OFFER_MESSAGES if offers else MESSAGES
    spec = FeatureSpec.fit(messages, CUSTOMERS, settings)
    events = random_events(seed, messages, 8, 700, max(windows))
    log = EventLog.from_events(events, spec.vocab)
    rng = np.random.default_rng(seed + 1)
    log = replace(log, weight=np.where(rng.random(len(log)) < 0.1, rng.integers(2, 5, len(log)), 1).astype(np.int64))
    own = pd.Timestamp(int(log.ts[len(log) // 2]), tz="UTC")
    instants = [AS_OF, own, AS_OF - pd.Timedelta(hours=3)]
    requests = _requests([*CUSTOMERS["customer_id"], "unknown"], instants, list(messages["message_id"]))
    name = f"hand_made_seed{seed}_windows{'-'.join(map(str, windows))}{'_offers' if offers else ''}"
    return World(name, spec, log, messages, CUSTOMERS, requests)


def simulated_world(seed: int = 3) -> World:
    """A simulated world of 40 customers over 60 days: every customer at three instants,
    for every message and none."""
    world = simulate(SimulationParams(customers=40, days=60, messages=40, seed=seed))
    spec = FeatureSpec.fit(world.messages, world.customers, FeatureSettings())
    log = EventLog.from_events(world.events, spec.vocab)
    end = pd.Timestamp(world.events["ts"].max())
    instants = [end, end - pd.Timedelta(days=20, hours=5), end - pd.Timedelta(days=45, minutes=7)]
    requests = _requests(list(world.customers["customer_id"]), instants, list(world.messages["message_id"]))
    return World(f"simulated_seed{seed}", spec, log, world.messages, world.customers, requests)


def all_worlds() -> Iterator[World]:
    yield simulated_world()
    for seed, windows in enumerate(WINDOWS, start=1):
        yield hand_made_world(seed, windows)
    yield hand_made_world(9, (7, 30, 90), offers=True)


def column_digests(matrix: FeatureMatrix) -> dict[str, str]:
    values = np.asarray(matrix.values, dtype=np.float64)
    values = np.where(np.isnan(values), np.nan, values)  # one NaN: 0/0 and np.nan differ in their sign bit
    return {name: hashlib.sha256(np.ascontiguousarray(values[:, j]).tobytes()).hexdigest()[:16]
            for j, name in enumerate(matrix.names)}
