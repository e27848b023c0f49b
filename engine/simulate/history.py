"""The interaction history, generated one day at a time with vectorised draws (no loop per event or customer).

Each day: organic events, then the logging policy's impressions, then their outcomes. The state the
response model sees is carried in per-customer arrays and defined so that it is exactly recomputable
from the event log (see ``ground_truth.py``):

- same-topic exposures: impressions of the topic in [midnight ``fatigue_window_days`` before the day, t)
  = the last days' counts (a ring buffer) + earlier impressions today (ties in time excluded);
- times shown: impressions of the same message strictly before t (at most one per channel per day);
- last survey: today's survey if it came strictly before t, else the last one of earlier days.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields

import numpy as np

from engine.simulate.event_log import KIND, EventColumns, EventLog
from engine.simulate.logging_policy import choice_distribution, choose, contacts, uniform_choice
from engine.simulate.organic import DayContext, OrganicDay, organic_day, stage_milestones
from engine.simulate.outcomes import Impressions, sample_outcomes
from engine.simulate.params import SimulationParams
from engine.simulate.point_in_time import earlier_same_key
from engine.simulate.response import ResponseCoefficients, respond
from engine.simulate.seeding import stream
from engine.simulate.timeline import ALWAYS_NS, DAY_NS, MS_NS, to_ns
from engine.simulate.world import Catalog, CustomerLatents, stage_at, start_ns

_DAY_MS = DAY_NS // MS_NS
_NO_COMPLAINT_DAY = -(10**6)


@dataclass(frozen=True, eq=False)
class ImpressionTruth:
    """Per logged impression, the state and true probabilities its outcomes were sampled from (compact)."""

    same_topic_exposures: np.ndarray  # int16
    times_shown: np.ndarray  # int16
    last_survey: np.ndarray  # float64, NaN if none
    true_stage: np.ndarray  # int8
    p_open: np.ndarray  # float64 (kept exact: the ground-truth check recomputes them to 1e-12)
    p_click: np.ndarray
    p_conversion: np.ndarray

    @classmethod
    def of(cls, impressions: Impressions) -> ImpressionTruth:
        return cls(same_topic_exposures=impressions.same_topic_exposures.astype(np.int16),
                   times_shown=impressions.times_shown.astype(np.int16), last_survey=impressions.last_survey,
                   true_stage=impressions.true_stage, p_open=impressions.p_open, p_click=impressions.p_click,
                   p_conversion=impressions.p_conversion)


@dataclass(frozen=True, eq=False)
class SimulatedHistory:
    events: EventColumns  # sorted by time; decision numbers follow the impressions' time order
    truth: ImpressionTruth  # row i belongs to decision i, i.e. to the i-th impression of the log


class _CarriedState:
    """Per-customer state carried from one day to the next."""

    def __init__(self, params: SimulationParams) -> None:
        n, n_topics = params.customers, len(params.topics)
        self.window_days = params.fatigue_window_days
        self.daily_topic_counts = np.zeros((self.window_days, n, n_topics), dtype=np.uint8)
        self.window_topic_counts = np.zeros((n, n_topics), dtype=np.int16)
        # A message goes to a customer at most once a day, so uint8 holds any count of a short simulation.
        shown_dtype = np.uint8 if params.days < 256 else np.uint16
        self.times_shown = np.zeros((n, params.messages), dtype=shown_dtype)
        self.last_survey = np.full(n, np.nan)
        self.last_complaint_day = np.full(n, _NO_COMPLAINT_DAY, dtype=np.int32)
        self.subscribed = np.ones((n, len(params.channels)), dtype=bool)

    def close_day(self, day: int, impressions: Impressions, organic: OrganicDay, complainers: np.ndarray,
                  unsubscribed: tuple[np.ndarray, np.ndarray]) -> None:
        n, n_topics = self.window_topic_counts.shape
        key = impressions.customer.astype(np.int64) * n_topics + impressions.topic
        today = np.bincount(key, minlength=n * n_topics).reshape(n, n_topics).astype(np.uint8)
        slot = day % self.window_days  # holds the day that now leaves the window
        self.window_topic_counts += today.astype(np.int16) - self.daily_topic_counts[slot]
        self.daily_topic_counts[slot] = today
        self.times_shown[impressions.customer, impressions.message] += 1  # no duplicate pairs within a day
        answered = ~np.isnan(organic.survey_score)
        self.last_survey[answered] = organic.survey_score[answered]
        self.last_complaint_day[np.concatenate([organic.complainers, complainers])] = day
        # Contact stops from the next day on; today's channel contact has already happened.
        self.subscribed[unsubscribed] = False


def _contact_day(params: SimulationParams, latents: CustomerLatents, catalog: Catalog, scores: np.ndarray,
                 state: _CarriedState, day_start: int, rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    customers, messages, times, propensities = [], [], [], []
    for channel, name in enumerate(params.channels):
        # Draw for every customer whether or not the channel has messages, so streams stay aligned.
        uniform = rng.random(params.customers)
        distribution = choice_distribution(scores, catalog, channel, day_start, params.exploration_temperature)
        if distribution.messages.size == 0:
            continue
        who = contacts(state.subscribed[:, channel], params.channel(name).contact_rate, uniform)
        message, propensity = choose(distribution, latents.segment[who], rng.random(len(who)))
        customers.append(who)
        messages.append(message.astype(np.int32))
        times.append(day_start + rng.integers(0, _DAY_MS, size=len(who), dtype=np.int64) * MS_NS)
        propensities.append(propensity)
    if not customers:
        return _no_contacts()
    return tuple(np.concatenate(parts) for parts in (customers, messages, times, propensities))


def _send_moment(params: SimulationParams, catalog: Catalog, state: _CarriedState, day_start: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, ...]:
    """A send day: every customer one message drawn uniformly among those valid at the day's start on a
    channel they are still subscribed to, at a random time of the day."""
    eligible = catalog.valid_at(day_start)[None, :] & state.subscribed[:, catalog.channel]
    who, message, propensity = uniform_choice(eligible, rng.random(params.customers))
    times = day_start + rng.integers(0, _DAY_MS, size=len(who), dtype=np.int64) * MS_NS
    return who.astype(np.int32), message.astype(np.int32), times, propensity


def _no_contacts() -> tuple[np.ndarray, ...]:
    empty = np.empty(0)
    return empty.astype(np.int32), empty.astype(np.int32), empty.astype(np.int64), empty


def _impressions_of_day(params: SimulationParams, coef: ResponseCoefficients, latents: CustomerLatents,
                        catalog: Catalog, state: _CarriedState, organic: OrganicDay,
                        drawn: tuple[np.ndarray, ...], first_decision: int) -> Impressions:
    customer, message, ts, propensity = drawn
    topic = catalog.topic[message]
    same_day = earlier_same_key(customer.astype(np.int64) * len(params.topics) + topic, ts)
    exposures = state.window_topic_counts[customer, topic].astype(np.int64) + same_day
    times_shown = state.times_shown[customer, message].astype(np.int64)
    survey_before = np.where(organic.survey_ts_ns[customer] < ts, organic.survey_score[customer],
                             state.last_survey[customer])
    true_stage = stage_at(latents.stage_entry_ns[customer], ts)
    probabilities = respond(coef, latents, catalog, customer, message, exposures, times_shown, survey_before,
                            true_stage)
    return Impressions(customer=customer, message=message, channel=catalog.channel[message], topic=topic, ts=ts,
                       propensity=propensity, decision=first_decision + np.arange(len(ts), dtype=np.int64),
                       same_topic_exposures=exposures, times_shown=times_shown, last_survey=survey_before,
                       true_stage=true_stage, p_open=probabilities.p_open, p_click=probabilities.p_click,
                       p_conversion=probabilities.p_conversion)


def _number_decisions_by_time(events: EventColumns, truth_chunks: dict[str, list[np.ndarray]]) -> SimulatedHistory:
    # Decisions were numbered as drawn (day, channel, customer); renumber them in the log's time order.
    drawn_number = events.decision[events.kind == KIND["impression"]]
    renumber = np.empty(len(drawn_number), dtype=np.int64)
    renumber[drawn_number] = np.arange(len(drawn_number))
    has_decision = events.decision >= 0
    events.decision[has_decision] = renumber[events.decision[has_decision]]
    # One column at a time, dropping the daily chunks as we go, keeps the peak memory low.
    columns = {name: np.concatenate(truth_chunks.pop(name))[drawn_number] for name in list(truth_chunks)}
    return SimulatedHistory(events, ImpressionTruth(**columns))


def generate_history(params: SimulationParams, latents: CustomerLatents, catalog: Catalog,
                     logging_scores: np.ndarray, *, on_day: Callable[[int, int], None] | None = None) -> SimulatedHistory:
    """Simulate ``params.days`` days of events for every customer."""
    coef = ResponseCoefficients.from_params(params)
    state = _CarriedState(params)
    log = EventLog()
    topic_cumulative = np.cumsum(latents.topic_probabilities(), axis=1)
    start, end = start_ns(params), to_ns(params.end)
    all_customers_day_start = np.empty(params.customers, dtype=np.int64)
    truth_chunks: dict[str, list[np.ndarray]] = {field.name: [] for field in fields(ImpressionTruth)}
    next_decision = 0
    send_days = set(params.send_days)
    window_ns = None if catalog.attribution_days is None else (catalog.attribution_days * DAY_NS).astype(np.int64)
    if params.stage_milestones:  # stages entered before the start left their events in the earlier history
        stage_milestones(params, latents, topic_cumulative, ALWAYS_NS + 1, start, stream(params.seed, "milestones"), log)
    for day in range(params.days):
        day_start = start + day * DAY_NS
        if params.stage_milestones:
            stage_milestones(params, latents, topic_cumulative, day_start, day_start + DAY_NS,
                             stream(params.seed, "milestones", day), log)
        all_customers_day_start.fill(day_start)
        context = DayContext(day=day, day_start_ns=day_start,
                             stage=stage_at(latents.stage_entry_ns, all_customers_day_start),
                             impressions_in_window=state.window_topic_counts.sum(axis=1),
                             last_complaint_day=state.last_complaint_day)
        organic = organic_day(params, latents, topic_cumulative, context, stream(params.seed, "organic", day), log)

        contact_rng = stream(params.seed, "contacts", day)
        if not params.send_days:
            drawn = _contact_day(params, latents, catalog, logging_scores, state, day_start, contact_rng)
        else:
            drawn = _send_moment(params, catalog, state, day_start, contact_rng) if day in send_days else _no_contacts()
        impressions = _impressions_of_day(params, coef, latents, catalog, state, organic, drawn, next_decision)
        next_decision += len(impressions.ts)
        log.add("impression", impressions.customer, impressions.ts, channel=impressions.channel,
                message=impressions.message, topic=impressions.topic, decision=impressions.decision,
                propensity=impressions.propensity)
        effects = sample_outcomes(params, coef, impressions, catalog.value, end,
                                  stream(params.seed, "outcomes", day), log, window_ns=window_ns)
        state.close_day(day, impressions, organic, effects.complainers,
                        (effects.unsubscribed_customer, effects.unsubscribed_channel))
        day_truth = ImpressionTruth.of(impressions)
        for name, chunks in truth_chunks.items():
            chunks.append(getattr(day_truth, name))
        if on_day is not None:
            on_day(day + 1, params.days)
    return _number_decisions_by_time(log.finish(), truth_chunks)
