"""Customers (observable attributes and latent traits) and the message catalog of a simulated world."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.simulate.ids import STRING_DTYPE, format_ids, id_width
from engine.simulate.params import SimulationParams
from engine.simulate.seeding import stream
from engine.simulate.timeline import ALWAYS_NS, DAY_NS, MS_NS, NEVER_NS, ns_to_series, to_ns

OFFER_TYPES: tuple[str, ...] = ("discount", "content", "reminder")
# P(offer type | message journey stage): early stages get content, later ones discounts and reminders.
_OFFER_BY_STAGE = np.array([[0.15, 0.75, 0.10], [0.35, 0.50, 0.15], [0.55, 0.10, 0.35], [0.40, 0.20, 0.40]])
_VALUE_GAMMA = {"discount": (2.0, 12.0), "content": (1.0, 2.0), "reminder": (2.0, 6.0)}


def start_ns(params: SimulationParams) -> int:
    """First instant of the first simulated day."""
    return to_ns(params.end) - params.days * DAY_NS


@dataclass(frozen=True, eq=False)
class CustomerLatents:
    """What the simulator knows about customers and a model must infer; rows align with customer ids."""

    segment: np.ndarray  # (n,) int8 code into params.segments; observable, used by the logging policy
    age_band: np.ndarray  # (n,) int8 code into params.age_bands; observable
    interest: np.ndarray  # (n, topics) float64 topic-interest logits: segment + age band + individual
    responsiveness: np.ndarray  # (n, channels) float64 logit lift of responses on each channel
    activity: np.ndarray  # (n,) float64 multiplier (mean 1) of organic visits and purchases
    satisfaction: np.ndarray  # (n,) float64 survey score the customer gives when unfatigued
    stage_entry_ns: np.ndarray  # (n, 3) int64 when consideration, purchase, loyalty start (ALWAYS/NEVER)

    @property
    def centred_interest(self) -> np.ndarray:
        return self.interest - self.interest.mean(axis=1, keepdims=True)

    def topic_probabilities(self) -> np.ndarray:
        """Each customer's distribution over topics for organic visits and purchases (softmax of interest)."""
        weights = np.exp(self.interest - self.interest.max(axis=1, keepdims=True))
        return weights / weights.sum(axis=1, keepdims=True)


def stage_at(stage_entry_ns: np.ndarray, ts_ns: np.ndarray) -> np.ndarray:
    """True journey stage (0..3) at each time; rows of ``stage_entry_ns`` align with ``ts_ns``."""
    return (stage_entry_ns <= np.asarray(ts_ns, dtype=np.int64)[:, None]).sum(axis=1).astype(np.int8)


def _days_ns(days: np.ndarray) -> np.ndarray:
    return (np.minimum(days, 50 * 365.0) * (DAY_NS // MS_NS)).astype(np.int64) * MS_NS


def _stage_entries(params: SimulationParams, initial: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # Stages advance one way; sojourns are exponential, so a customer's remaining time in the initial
    # stage has the same distribution as a whole sojourn (memorylessness).
    n = len(initial)
    entries = np.full((n, 3), NEVER_NS, dtype=np.int64)
    clock = np.full(n, start_ns(params), dtype=np.int64)
    for stage in range(3):
        sojourn_days = rng.exponential(params.stage_mean_days[stage], size=n)
        sojourn_ns = _days_ns(sojourn_days)
        entered_before = initial > stage
        in_stage = initial == stage
        reached = entries[:, stage - 1] != NEVER_NS if stage > 0 else np.zeros(n, dtype=bool)
        moving = in_stage | (reached & ~entered_before)
        clock = np.where(moving, clock + sojourn_ns, clock)
        entries[:, stage] = np.where(entered_before, ALWAYS_NS, np.where(moving, clock, NEVER_NS))
    return entries


def _date_past_entries(params: SimulationParams, entries: np.ndarray, initial: np.ndarray, signup_ns: np.ndarray,
                       rng: np.random.Generator) -> None:
    """Replace the ``ALWAYS_NS`` of stages entered before the start with when they were entered (in place).

    Walking back from the start: the time already spent in the initial stage, then each earlier stage's
    sojourn, all exponential (memoryless, so independent of the time still to come), and never before the
    signup. Those entries then leave their marking events in the history before the simulated days.
    """
    n = len(initial)
    clock = np.full(n, start_ns(params), dtype=np.int64)
    # Mean days in each stage; loyalty has no end, so its own mean of the time already spent in it.
    mean_days = (*params.stage_mean_days, params.loyalty_mean_days_before_start)
    for stage in range(3, 0, -1):  # entry into ``stage`` is column stage - 1
        # Customers whose initial stage is ``stage`` or a later one entered ``stage`` before the start:
        # the former have spent part of a sojourn in it so far, the latter a whole one.
        entered = initial >= stage
        spent = rng.exponential(mean_days[stage], size=n)
        clock = np.where(entered, np.maximum(clock - _days_ns(spent), signup_ns), clock)
        entries[:, stage - 1] = np.where(entered, clock, entries[:, stage - 1])


def build_customers(params: SimulationParams) -> tuple[pd.DataFrame, CustomerLatents]:
    """The customers table (contract columns plus attributes) and their latent traits."""
    rng = stream(params.seed, "customers")
    n, n_topics, n_channels = params.customers, len(params.topics), len(params.channels)
    n_segments, n_ages = len(params.segments), len(params.age_bands)

    segment = rng.choice(n_segments, size=n, p=rng.dirichlet(np.full(n_segments, 8.0))).astype(np.int8)
    age_band = rng.choice(n_ages, size=n, p=rng.dirichlet(np.full(n_ages, 8.0))).astype(np.int8)
    region = rng.choice(len(params.regions), size=n, p=rng.dirichlet(np.full(len(params.regions), 8.0)))

    segment_effect = rng.normal(0.0, params.interest_segment_scale, size=(n_segments, n_topics))
    age_effect = rng.normal(0.0, params.interest_age_scale, size=(n_ages, n_topics))
    interest = segment_effect[segment] + age_effect[age_band]
    interest += rng.normal(0.0, params.interest_noise_scale, size=(n, n_topics))

    # Younger bands answer push and app more, older bands email and sms (per-channel youth_affinity).
    youth = np.linspace(1.0, -1.0, n_ages) if n_ages > 1 else np.zeros(1)
    affinity = np.array([params.channel(name).youth_affinity for name in params.channels])
    responsiveness = youth[age_band][:, None] * affinity[None, :]
    responsiveness += rng.normal(0.0, params.responsiveness_noise_scale, size=(n, n_channels))

    sigma = params.activity_sigma
    activity = np.exp(rng.normal(-0.5 * sigma**2, sigma, size=n))
    segment_mood = rng.normal(0.0, 0.3, size=n_segments)
    satisfaction = params.satisfaction_mean + segment_mood[segment] + rng.normal(0.0, params.satisfaction_sd, n)

    initial_stage = rng.choice(4, size=n, p=np.array(params.stage_initial_share))
    stage_entry = _stage_entries(params, initial_stage, rng)
    # Customers further along the journey tend to have signed up earlier.
    days_ago = params.signup_history_days * rng.beta(1.0 + initial_stage, 1.5)
    signup_ns = start_ns(params) - ((days_ago * (DAY_NS // MS_NS)).astype(np.int64) + 1) * MS_NS
    if params.stage_milestones:
        _date_past_entries(params, stage_entry, initial_stage, signup_ns, stream(params.seed, "stage_history"))

    frame = pd.DataFrame({
        "customer_id": format_ids("c", np.arange(n), id_width(n, 6)),
        "segment": pd.Series(np.array(params.segments)[segment], dtype=STRING_DTYPE),
        "age_band": pd.Series(np.array(params.age_bands)[age_band], dtype=STRING_DTYPE),
        "region": pd.Series(np.array(params.regions)[region], dtype=STRING_DTYPE),
        "signup_date": ns_to_series(signup_ns),
    })
    latents = CustomerLatents(segment=segment, age_band=age_band, interest=interest,
                              responsiveness=responsiveness, activity=activity, satisfaction=satisfaction,
                              stage_entry_ns=stage_entry)
    return frame, latents


@dataclass(frozen=True, eq=False)
class Catalog:
    """Message attributes as codes, aligned with message ids."""

    channel: np.ndarray  # (m,) int8 code into params.channels
    topic: np.ndarray  # (m,) int8 code into params.topics
    stage: np.ndarray  # (m,) int8 code into JOURNEY_STAGES
    value: np.ndarray  # (m,) float64 business value of a conversion
    valid_from_ns: np.ndarray  # (m,) int64, ALWAYS_NS when open-ended
    valid_to_ns: np.ndarray  # (m,) int64 exclusive, NEVER_NS when open-ended
    attribution_days: np.ndarray | None = None  # (m,) float64 window of each message (send-moment worlds)

    def valid_at(self, ts_ns: int) -> np.ndarray:
        """Messages that may be sent at ``ts_ns``: valid_from <= ts < valid_to."""
        return (self.valid_from_ns <= ts_ns) & (ts_ns < self.valid_to_ns)


def _validity(params: SimulationParams, n_extra: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    # Boundaries fall on simulated midnights so that the eligible set is constant within a day.
    start, days = start_ns(params), params.days
    kind = rng.choice(3, size=n_extra, p=[0.7, 0.15, 0.15])  # open-ended, expires, starts later
    valid_from = np.full(n_extra, ALWAYS_NS, dtype=np.int64)
    valid_to = np.full(n_extra, NEVER_NS, dtype=np.int64)
    expires = kind == 1
    valid_from[expires] = start - rng.integers(10, 60, size=expires.sum()) * DAY_NS
    low = min(7, days - 1)
    valid_to[expires] = start + rng.integers(low, max(days - 1, low + 1), size=expires.sum()) * DAY_NS
    later = kind == 2
    valid_from[later] = start + rng.integers(1, max(days - 7, 2), size=later.sum()) * DAY_NS
    return valid_from, valid_to


def _daily_layout(params: SimulationParams, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """Channel, topic, stage, valid_from, valid_to of a daily world's catalog: every channel x topic pair
    and every channel x stage pair exist, and some extra messages expire or start later."""
    n_channels, n_topics, m = len(params.channels), len(params.topics), params.messages
    n_base = n_channels * n_topics
    base = np.arange(n_base)
    n_extra = m - n_base
    channel = np.concatenate([base % n_channels, rng.integers(0, n_channels, n_extra)])
    topic = np.concatenate([base // n_channels, rng.integers(0, n_topics, n_extra)])
    stage = np.concatenate([base % 4, rng.integers(0, 4, n_extra)])  # 5 channels x 4 stages all present
    valid_from, valid_to = _validity(params, n_extra, rng)
    # The base messages are open-ended, so every channel always has at least one message per topic.
    valid_from = np.concatenate([np.full(n_base, ALWAYS_NS, dtype=np.int64), valid_from])
    valid_to = np.concatenate([np.full(n_base, NEVER_NS, dtype=np.int64), valid_to])
    return channel, topic, stage, valid_from, valid_to


def _send_moment_layout(params: SimulationParams, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A send-moment world's few offers: message i on channel i mod channels and topic i mod topics (every
    channel and topic present), a random stage, all open-ended (every offer may go out at every moment)."""
    m = params.messages
    stage = rng.integers(0, 4, m)
    always, never = np.full(m, ALWAYS_NS, dtype=np.int64), np.full(m, NEVER_NS, dtype=np.int64)
    return np.arange(m) % len(params.channels), np.arange(m) % len(params.topics), stage, always, never


def build_catalog(params: SimulationParams) -> tuple[pd.DataFrame, Catalog]:
    """The messages table and its codes (see the two layouts); send-moment worlds add attribution_days."""
    rng = stream(params.seed, "catalog")
    m = params.messages
    layout = _send_moment_layout if params.send_days else _daily_layout
    channel, topic, stage, valid_from, valid_to = layout(params, rng)

    order = rng.permutation(m)  # ids must not reveal how a message was made
    channel, topic, stage = channel[order], topic[order], stage[order]
    valid_from, valid_to = valid_from[order], valid_to[order]

    offer = (rng.random(m)[:, None] > np.cumsum(_OFFER_BY_STAGE[stage], axis=1)).sum(axis=1)
    offer_type = np.array(OFFER_TYPES)[np.minimum(offer, len(OFFER_TYPES) - 1)]
    shape = np.array([_VALUE_GAMMA[name][0] for name in offer_type])
    scale = np.array([_VALUE_GAMMA[name][1] for name in offer_type])
    value = np.round(rng.gamma(shape, scale), 2)
    is_promotional = (offer_type == "discount") | ((offer_type == "reminder") & (rng.random(m) < 0.5))

    frame = pd.DataFrame({
        "message_id": format_ids("m", np.arange(m), id_width(m, 4)),
        "channel": pd.Series(np.array(params.channels)[channel], dtype=STRING_DTYPE),
        "topic": pd.Series(np.array(params.topics)[topic], dtype=STRING_DTYPE),
        "journey_stage": pd.Series(np.array(params.stages)[stage], dtype=STRING_DTYPE),
        "value": value,
        "valid_from": ns_to_series(valid_from, missing=ALWAYS_NS),
        "valid_to": ns_to_series(valid_to, missing=NEVER_NS),
        "offer_type": pd.Series(offer_type, dtype=STRING_DTYPE),
        "is_promotional": is_promotional,
    })
    attribution_days = None
    if params.send_days:
        low, high = params.attribution_days_range
        attribution_days = rng.integers(low, high + 1, size=m).astype(np.float64)
        frame["attribution_days"] = attribution_days
    catalog = Catalog(channel=channel.astype(np.int8), topic=topic.astype(np.int8), stage=stage.astype(np.int8),
                      value=value, valid_from_ns=valid_from, valid_to_ns=valid_to, attribution_days=attribution_days)
    return frame, catalog
