"""A tiny world for the online decision engine: hand-made catalog, random history, a small LightGBM model,
written as a real bundle with ``write_bundle`` and read back with ``load_bundle``.

Customers ``c0..c29`` have random events over 120 days (``c25..c29`` have no profile; complaints and
unsubscribes only from ``c20`` up, so that lower customers are quiet for the policy tests); the state's cutoff is
day 120, the longest window 30 days, so 90 days of history are compacted. A few customers have hand-made
histories for the policy tests (times relative to ``CUTOFF``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine.config import FeatureSettings
from engine.contract.schema import EVENTS
from engine.features.build import CatalogTable, ProfileTable, build_features, make_history
from engine.features.log import EventLog
from engine.features.spec import FeatureSpec
from engine.features.state import FeatureState
from engine.model.bundle import Bundle, load_bundle, write_bundle
from tests.builders import events_frame, messages_frame

FEATURES = FeatureSettings(windows_days=(7, 30), affinity_half_life_days=10, num_threads=1)
START = pd.Timestamp("2026-01-01T00:00:00Z")
CUTOFF = START + pd.Timedelta(days=120)
HOUR = pd.Timedelta(hours=1)
TOPICS = ("deals", "news", "travel", "food")
# email: 5 messages (one expired before the cutoff), sms: 3, push: only "deals" (for topic clashes).
MESSAGES = messages_frame([
    {"message_id": "e1", "channel": "email", "topic": "deals", "journey_stage": "awareness", "value": 2.0},
    {"message_id": "e2", "channel": "email", "topic": "news"},
    {"message_id": "e3", "channel": "email", "topic": "travel", "journey_stage": "purchase"},
    {"message_id": "e4", "channel": "email", "topic": "food", "journey_stage": "loyalty"},
    {"message_id": "e5", "channel": "email", "topic": "news", "valid_to": "2026-02-01T00:00:00Z"},
    {"message_id": "s1", "channel": "sms", "topic": "deals"},
    {"message_id": "s2", "channel": "sms", "topic": "travel", "journey_stage": "consideration"},
    {"message_id": "s3", "channel": "sms", "topic": "food", "valid_from": "2026-01-20T00:00:00Z"},
    {"message_id": "p1", "channel": "push", "topic": "deals"},
])
CUSTOMERS = pd.DataFrame({"customer_id": [f"c{i}" for i in range(25)] + ["profile_only"],
                          "segment": (["gold", "silver", "bronze", "gold", "silver"] * 5) + ["gold"],
                          "age": [20.0 + i for i in range(25)] + [None]})
KINDS = ("visit", "impression", "open", "click", "conversion", "purchase", "survey", "support", "complaint", "unsubscribe")
KIND_P = (0.3, 0.3, 0.1, 0.08, 0.02, 0.08, 0.04, 0.04, 0.035, 0.005)


def random_events(seed: int, n: int, start: pd.Timestamp, days: float, customers: int = 30) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    kinds = rng.choice(KINDS, size=n, p=KIND_P)
    rows = []
    for i in range(n):
        kind = str(kinds[i])
        m = int(rng.integers(0, len(MESSAGES)))
        on_message = kind in ("impression", "open", "click", "conversion")
        channel = MESSAGES["channel"].iloc[m] if on_message else (str(rng.choice(["email", "sms", "push"])) if kind == "unsubscribe" else None)
        rows.append({
            "ts": (start + pd.Timedelta(seconds=int(rng.integers(0, int(days * 86400))))).isoformat(),
            # Complaints and opt-outs only for c20 and up: the policy tests use quiet customers below.
            "customer_id": f"c{rng.integers(20 if kind in ('complaint', 'unsubscribe') else 0, customers)}", "event_type": kind,
            "message_id": MESSAGES["message_id"].iloc[m] if on_message else None, "channel": channel,
            "topic": MESSAGES["topic"].iloc[m] if on_message else str(rng.choice(TOPICS)),
            "value": float(rng.integers(0, 11)) if kind == "survey" else (float(rng.integers(100, 20000)) / 100 if kind == "purchase" else None),
        })
    return events_frame(rows)


def at(offset: pd.Timedelta, customer: str, kind: str, **extra) -> dict:
    return {"ts": (CUTOFF + offset).isoformat(), "customer_id": customer, "event_type": kind, **extra}


# Hand-made histories: "old_unsub" left sms 100 days before the cutoff (compacted); "heavy" saw e1 three
# times 60-80 days before it (one compacted record of weight 3) and visits travel.
HAND_MADE = [
    at(pd.Timedelta(days=-100), "old_unsub", "unsubscribe", channel="sms"),
    at(pd.Timedelta(days=-100), "old_unsub", "visit", topic="deals"),
    *[at(pd.Timedelta(days=-d), "heavy", "impression", channel="email", message_id="e1", topic="deals") for d in (80, 70, 60)],
    at(pd.Timedelta(days=-3), "heavy", "visit", topic="travel"),
]


@dataclass(frozen=True, eq=False)
class OnlineWorld:
    bundle: Bundle
    events: pd.DataFrame  # every event before the cutoff
    spec: FeatureSpec

    def live(self, rows: list[dict]) -> pd.DataFrame:
        """Live events as the event store returns them: contract columns, canonical, sorted by ts."""
        return events_frame(rows)[list(EVENTS.required + EVENTS.optional)]

    def batch_features(self, events: pd.DataFrame, customer_id: str, as_of: pd.Timestamp, message_ids) -> pd.DataFrame:
        """The batch path over the whole history: what training and ``nbm score`` compute."""
        ids = list(message_ids)
        # One row of a known customer rides along: History._count_by_at fails when no requested customer
        # is in the log (engine/features/history.py, reported); it never changes another row's values.
        requests = pd.DataFrame({"customer_id": [customer_id] * len(ids) + ["c0"], "as_of": as_of, "message_id": ids + [ids[0]]})
        matrix = build_features(requests, make_history(EventLog.from_events(events, self.spec.vocab), self.spec),
                                CatalogTable.from_messages(MESSAGES, self.spec), ProfileTable.from_customers(CUSTOMERS),
                                self.spec, dtype=np.float64)
        return matrix.to_frame().iloc[: len(ids)]


def build_world(root: Path, blind_to: tuple[str, ...] = (), messages: pd.DataFrame = MESSAGES) -> OnlineWorld:
    """The world and its bundle; ``blind_to``: features the model is trained without (constant NaN, so that
    no tree splits on them), as a model that finds them useless; ``messages``: MESSAGES with other
    columns (e.g. ``offer_id``), the same messages on the same channels."""
    events = pd.concat([random_events(0, 3000, START, 120), events_frame(HAND_MADE)], ignore_index=True)
    events = events.sort_values("ts", kind="stable", ignore_index=True)
    spec = FeatureSpec.fit(messages, CUSTOMERS, FEATURES)
    log = EventLog.from_events(events, spec.vocab)
    state = FeatureState.at_cutoff(log, CUTOFF, FEATURES.max_window_days)
    # A small model on the impressions before the cutoff.
    shown = events[events["event_type"] == "impression"].reset_index(drop=True)
    requests = pd.DataFrame({"customer_id": shown["customer_id"], "as_of": shown["ts"], "message_id": shown["message_id"]})
    matrix = build_features(requests, make_history(log, spec), CatalogTable.from_messages(messages, spec),
                            ProfileTable.from_customers(CUSTOMERS), spec)
    # Labels: clicks more likely on the topics the customer visits (the model must learn something).
    # Messages shown often before lose their appeal: the model then splits on the costly per-row columns too.
    share = np.nan_to_num(matrix.values[:, matrix.names.index("msg_topic_visit_share_30d")].astype(float))
    seen = np.nan_to_num(matrix.values[:, matrix.names.index("msg_seen_count")].astype(float))
    label = (np.random.default_rng(1).random(len(shown)) < 0.1 + 0.6 * share - 0.12 * np.minimum(seen, 1.0)).astype(float)
    values = matrix.values.copy()
    values[:, [matrix.names.index(name) for name in blind_to]] = np.nan
    params = {"objective": "binary", "num_leaves": 7, "min_data_in_leaf": 5, "learning_rate": 0.2, "verbosity": -1,
              "num_threads": 1, "deterministic": True, "seed": 1}
    booster = lgb.train(params, lgb.Dataset(values, label=label, feature_name=list(matrix.names)), num_boost_round=15)
    write_bundle(root, booster=booster, spec=spec, feature_names=matrix.names, messages=messages, customers=CUSTOMERS,
                 state=state, snapshot=pd.DataFrame({"customer_id": ["c0"]}),
                 metadata={"model_version": "7", "objective": "binary"}, name="bundle-test")
    return OnlineWorld(load_bundle(root), events, spec)
