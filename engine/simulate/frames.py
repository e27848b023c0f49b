"""Turn the simulator's code arrays into contract frames (compact: categoricals for repeated strings)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.contract.schema import EVENT_TYPES, JOURNEY_STAGES
from engine.simulate.event_log import EventColumns
from engine.simulate.ids import STRING_DTYPE, format_ids, id_width
from engine.simulate.history import ImpressionTruth
from engine.simulate.params import SimulationParams
from engine.simulate.timeline import ns_to_series

EVENT_COLUMNS: tuple[str, ...] = ("event_id", "ts", "customer_id", "event_type", "channel", "message_id",
                                  "topic", "decision_id", "propensity", "value")


def _categorical(codes: np.ndarray, categories: pd.Index | tuple[str, ...]) -> pd.Categorical:
    return pd.Categorical.from_codes(codes, categories=pd.Index(list(categories), dtype=STRING_DTYPE)
                                     if isinstance(categories, tuple) else categories)


def _decision_ids(decision: np.ndarray, count: int) -> pd.Series:
    return format_ids("d", np.maximum(decision, 0), id_width(count, 8), valid=decision >= 0)


def events_frame(events: EventColumns, params: SimulationParams, customer_ids: pd.Index,
                 message_ids: pd.Index, n_decisions: int) -> pd.DataFrame:
    """The events table: one row per event, sorted by ts then event_id, not-applicable columns null."""
    n = len(events)
    return pd.DataFrame({
        "event_id": format_ids("e", np.arange(n), id_width(n, 9)),
        "ts": ns_to_series(events.ts),
        "customer_id": _categorical(events.customer, customer_ids),
        "event_type": _categorical(events.kind, EVENT_TYPES),
        "channel": _categorical(events.channel, params.channels),
        "message_id": _categorical(events.message, message_ids),
        "topic": _categorical(events.topic, params.topics),
        "decision_id": _decision_ids(events.decision, n_decisions),
        "propensity": events.propensity,
        "value": events.value,
    }, columns=list(EVENT_COLUMNS), copy=False)  # the arrays are fresh: copying would only double the peak


def impressions_frame(events: pd.DataFrame, truth: ImpressionTruth) -> pd.DataFrame:
    """Per logged impression: the history state and the true probabilities the simulator sampled from."""
    logged = events.loc[(events["event_type"] == "impression").to_numpy(),
                        ["decision_id", "customer_id", "message_id", "channel", "ts", "propensity"]]
    frame = logged.reset_index(drop=True)
    frame["same_topic_exposures"] = truth.same_topic_exposures
    frame["times_shown"] = truth.times_shown
    frame["last_survey"] = truth.last_survey
    frame["true_stage"] = _categorical(truth.true_stage, JOURNEY_STAGES)
    frame["p_open"] = truth.p_open
    frame["p_click"] = truth.p_click
    frame["p_conversion"] = truth.p_conversion
    return frame
