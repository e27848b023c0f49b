"""Outcomes of one day's impressions: open, click, conversion, unsubscribe and message complaints.

One uniform per impression decides the nested outcomes (open if u < p_open, click if u < p_click,
conversion if u < p_conversion), so click implies open and conversion implies click by construction.
Delays are log-normal, capped, and shrunk near the end so that every event falls before ``end``.

With per-message attribution windows (a send-moment world) the responses are timed within the window
instead: open and click as above but never past the window's end, the conversion uniformly between the
click and the window's end (an offer completed any time while it runs); and nothing is shrunk: a response
at or after ``end`` is not in the data, as in a data set that stops while offers still run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.simulate.event_log import EventLog
from engine.simulate.params import SimulationParams
from engine.simulate.response import ResponseCoefficients, complaint_probability, unsubscribe_probability
from engine.simulate.timeline import MINUTE_NS, MS_NS

_DELAY_SIGMA = 1.0
_CLICK_DELAY_MINUTES, _CONVERSION_DELAY_MINUTES = 3.0, 40.0
_UNSUBSCRIBE_DELAY_MINUTES, _COMPLAINT_DELAY_MINUTES = 20.0, 180.0
_OPEN_CAP_MS, _CLICK_CAP_MS, _CONVERSION_CAP_MS = 24 * 3_600_000, 12 * 3_600_000, 12 * 3_600_000
_UNSUBSCRIBE_CAP_MS, _COMPLAINT_CAP_MS = 24 * 3_600_000, 48 * 3_600_000


@dataclass(frozen=True, eq=False)
class Impressions:
    """One day's logged impressions with the state and true probabilities used to sample outcomes."""

    customer: np.ndarray  # int32
    message: np.ndarray  # int32
    channel: np.ndarray  # int8
    topic: np.ndarray  # int8
    ts: np.ndarray  # int64 ns
    propensity: np.ndarray  # float64, P(this message | contact) under the logging policy
    decision: np.ndarray  # int64 decision number
    same_topic_exposures: np.ndarray  # int64
    times_shown: np.ndarray  # int64
    last_survey: np.ndarray  # float64, NaN if none
    true_stage: np.ndarray  # int8
    p_open: np.ndarray
    p_click: np.ndarray
    p_conversion: np.ndarray


@dataclass(frozen=True, eq=False)
class OutcomeEffects:
    """What the outcomes change in the carried state: opt-outs and complaints."""

    unsubscribed_customer: np.ndarray
    unsubscribed_channel: np.ndarray
    complainers: np.ndarray


def _delays_ms(rng: np.random.Generator, median_minutes: np.ndarray | float, cap_ms: int, size: int) -> np.ndarray:
    minutes = np.asarray(median_minutes) * np.exp(rng.normal(0.0, _DELAY_SIGMA, size))
    return np.minimum(minutes * (MINUTE_NS // MS_NS), cap_ms).astype(np.int64) + 1


def _shrink(delays_ms: np.ndarray, available_ms: np.ndarray, cap_ms: int) -> np.ndarray:
    # Where the delay would cross the end, rescale it by the room left (keeps order, spreads the times).
    shrunk = np.minimum((delays_ms * (available_ms / cap_ms)).astype(np.int64), available_ms)
    return np.where(delays_ms <= available_ms, delays_ms, shrunk)


def _response_times(imp: Impressions, open_ms: np.ndarray, click_ms: np.ndarray, conversion_ms: np.ndarray,
                    end_ns: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open, click and conversion times squeezed to fall before ``end_ns`` (the daily worlds)."""
    available_ms = (end_ns - MS_NS - imp.ts) // MS_NS  # the last instant an event may take is end - 1 ms
    chain_cap = _OPEN_CAP_MS + _CLICK_CAP_MS + _CONVERSION_CAP_MS
    squeeze = np.where(open_ms + click_ms + conversion_ms <= available_ms, 1.0, available_ms / chain_cap)
    last_ns = end_ns - MS_NS  # clipping is monotone, so open <= click <= conversion still holds
    open_ts = np.minimum(imp.ts + (open_ms * squeeze).astype(np.int64) * MS_NS, last_ns)
    click_ts = np.minimum(open_ts + (click_ms * squeeze).astype(np.int64) * MS_NS, last_ns)
    conversion_ts = np.minimum(click_ts + (conversion_ms * squeeze).astype(np.int64) * MS_NS, last_ns)
    return open_ts, click_ts, conversion_ts


def windowed_response_times(ts: np.ndarray, window_ns: np.ndarray, open_ms: np.ndarray, click_ms: np.ndarray,
                            conversion_u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Open, click and conversion times inside each impression's window [ts, ts + window): open and click
    after their delays but at most the window's last millisecond, the conversion at ``conversion_u`` of the
    way from the click to that millisecond (whole milliseconds; open <= click <= conversion)."""
    last_ns = ts + window_ns - MS_NS
    open_ts = np.minimum(ts + open_ms * MS_NS, last_ns)
    click_ts = np.minimum(open_ts + click_ms * MS_NS, last_ns)
    room_ms = (last_ns - click_ts) // MS_NS
    conversion_ts = click_ts + (conversion_u * room_ms).astype(np.int64) * MS_NS
    return open_ts, click_ts, conversion_ts


def sample_outcomes(params: SimulationParams, coef: ResponseCoefficients, impressions: Impressions,
                    message_value: np.ndarray, end_ns: int, rng: np.random.Generator,
                    log: EventLog, *, window_ns: np.ndarray | None = None) -> OutcomeEffects:
    """Log the impressions' outcomes; return who unsubscribed from which channel and who complained.
    ``window_ns``: each message's attribution window (module docstring), None in a daily world."""
    imp, size = impressions, len(impressions.ts)
    open_medians = np.array([params.channel(name).open_delay_minutes for name in params.channels])
    respond_u, unsubscribe_u, complaint_u = rng.random(size), rng.random(size), rng.random(size)
    open_ms = _delays_ms(rng, open_medians[imp.channel], _OPEN_CAP_MS, size)
    click_ms = _delays_ms(rng, _CLICK_DELAY_MINUTES, _CLICK_CAP_MS, size)
    conversion_ms = _delays_ms(rng, _CONVERSION_DELAY_MINUTES, _CONVERSION_CAP_MS, size)
    unsubscribe_ms = _delays_ms(rng, _UNSUBSCRIBE_DELAY_MINUTES, _UNSUBSCRIBE_CAP_MS, size)
    complaint_ms = _delays_ms(rng, _COMPLAINT_DELAY_MINUTES, _COMPLAINT_CAP_MS, size)
    available_ms = (end_ns - MS_NS - imp.ts) // MS_NS  # the last instant an event may take is end - 1 ms

    if window_ns is None:
        times = _response_times(imp, open_ms, click_ms, conversion_ms, end_ns)
    else:  # drawn after every daily draw, so that the daily worlds' numbers do not move
        times = windowed_response_times(imp.ts, window_ns[imp.message], open_ms, click_ms, rng.random(size))

    shared = {"channel": imp.channel, "message": imp.message, "topic": imp.topic, "decision": imp.decision}
    for kind, happened, ts in (("open", respond_u < imp.p_open, times[0]),
                               ("click", respond_u < imp.p_click, times[1]),
                               ("conversion", respond_u < imp.p_conversion, times[2])):
        rows = np.flatnonzero(happened & (ts < end_ns))  # a daily world's times are always before the end
        extra = {"value": message_value[imp.message[rows]]} if kind == "conversion" else {}
        log.add(kind, imp.customer[rows], ts[rows], **{k: v[rows] for k, v in shared.items()}, **extra)

    quits = np.flatnonzero(unsubscribe_u < unsubscribe_probability(coef, imp.channel, imp.same_topic_exposures))
    quit_ts = imp.ts[quits] + _shrink(unsubscribe_ms[quits], available_ms[quits], _UNSUBSCRIBE_CAP_MS) * MS_NS
    log.add("unsubscribe", imp.customer[quits], quit_ts, channel=imp.channel[quits])

    gripes = np.flatnonzero(complaint_u < complaint_probability(coef, imp.same_topic_exposures))
    gripe_ts = imp.ts[gripes] + _shrink(complaint_ms[gripes], available_ms[gripes], _COMPLAINT_CAP_MS) * MS_NS
    log.add("complaint", imp.customer[gripes], gripe_ts, channel=imp.channel[gripes],
            message=imp.message[gripes], topic=imp.topic[gripes])
    return OutcomeEffects(imp.customer[quits], imp.channel[quits], imp.customer[gripes])
