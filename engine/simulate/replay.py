"""Recompute, from a contract event log, the history state the response model needs at a request time.

All look-ups are strictly before the request time and vectorised with sorted arrays and ``np.searchsorted``:
the same definitions the simulator used while generating, so the recomputation is exact.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.simulate.point_in_time import count_before, last_before
from engine.simulate.timeline import DAY_NS, midnight_ns, series_to_ns
from engine.simulate.world import Catalog, CustomerLatents, stage_at


def codes_of(index: pd.Index, values: pd.Series) -> np.ndarray:
    """Position of each value in ``index`` (-1 when absent); fast for categorical columns."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        by_category = index.get_indexer(values.cat.categories.astype(str))
        codes = values.cat.codes.to_numpy()
        return np.where(codes >= 0, by_category[codes], -1)
    return index.get_indexer(values.astype(str))


@dataclass(frozen=True, eq=False)
class HistoryState:
    same_topic_exposures: np.ndarray  # int64, same-topic impressions in the fatigue window before t
    times_shown: np.ndarray  # int64, impressions of this message to this customer before t
    last_survey: np.ndarray  # float64, last survey score before t, NaN if none
    true_stage: np.ndarray  # int8, the customer's journey stage at t


@dataclass(frozen=True, eq=False)
class LoggedHistory:
    """The parts of an event log the response model depends on, as codes."""

    impression_customer: np.ndarray
    impression_message: np.ndarray
    impression_ts: np.ndarray
    survey_customer: np.ndarray
    survey_ts: np.ndarray
    survey_score: np.ndarray

    @classmethod
    def from_events(cls, events: pd.DataFrame, customer_ids: pd.Index, message_ids: pd.Index) -> LoggedHistory:
        # Customers unknown to this world cannot affect its customers' state and are skipped.
        missing = [name for name in ("ts", "customer_id", "event_type") if name not in events.columns]
        if missing:
            raise ValueError(f"events: missing required columns {missing}")
        events = events.reindex(columns=[*events.columns, *({"message_id", "value"} - set(events.columns))])
        event_type = events["event_type"]
        impressions = events.loc[(event_type == "impression").to_numpy()]
        surveys = events.loc[(event_type == "survey").to_numpy()]
        customer = codes_of(customer_ids, impressions["customer_id"])
        message = codes_of(message_ids, impressions["message_id"])
        known = customer >= 0
        if (message[known] < 0).any():
            bad = impressions["message_id"].to_numpy()[known & (message < 0)][0]
            raise ValueError(f"events: impression names message_id {bad!r}, which is not in the catalog")
        survey_customer = codes_of(customer_ids, surveys["customer_id"])
        answered = (survey_customer >= 0) & surveys["value"].notna().to_numpy()
        return cls(
            impression_customer=customer[known], impression_message=message[known],
            impression_ts=series_to_ns(impressions["ts"])[known],
            survey_customer=survey_customer[answered], survey_ts=series_to_ns(surveys["ts"])[answered],
            survey_score=surveys["value"].to_numpy(dtype=np.float64)[answered],
        )


def history_state(history: LoggedHistory, latents: CustomerLatents, catalog: Catalog, window_days: int,
                  customer: np.ndarray, message: np.ndarray, ts_ns: np.ndarray) -> HistoryState:
    """State of each (customer, message, time) request computed from ``history`` strictly before the time."""
    n_topics = latents.interest.shape[1]
    n_messages = len(catalog.topic)
    customer64 = customer.astype(np.int64)

    shown_topic_key = history.impression_customer.astype(np.int64) * n_topics + catalog.topic[
        history.impression_message]
    request_topic_key = customer64 * n_topics + catalog.topic[message]
    window_start = midnight_ns(ts_ns) - window_days * DAY_NS
    exposures = (count_before(shown_topic_key, history.impression_ts, request_topic_key, ts_ns)
                 - count_before(shown_topic_key, history.impression_ts, request_topic_key, window_start))

    shown_message_key = history.impression_customer.astype(np.int64) * n_messages + history.impression_message
    times_shown = count_before(shown_message_key, history.impression_ts, customer64 * n_messages + message, ts_ns)

    last_survey = last_before(history.survey_customer.astype(np.int64), history.survey_ts, history.survey_score,
                              customer64, ts_ns)
    true_stage = stage_at(latents.stage_entry_ns[customer], ts_ns)
    return HistoryState(exposures, times_shown, last_survey, true_stage)
