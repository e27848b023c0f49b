"""One day of organic behaviour: visits, purchases, surveys, support contacts and complaints.

Visits and purchases reveal interests (their topic is drawn from the customer's topic distribution) and
the journey stage: rates depend on it, and a stage entered today leaves the event that marks it, as it
does in real journeys (a visit into consideration, the first purchase of the buying phase, the repeat
purchase of a loyal customer). Surveys are lower for fatigued customers and recent complainers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.simulate.event_log import EventLog
from engine.simulate.params import SimulationParams
from engine.simulate.timeline import DAY_NS, MS_NS, NEVER_NS
from engine.simulate.world import CustomerLatents

_DAY_MS = DAY_NS // MS_NS
_SURVEY_FATIGUE_FREE = 3  # impressions in the window a customer takes without getting annoyed
_COMPLAINT_MEMORY_DAYS = 30


@dataclass(frozen=True, eq=False)
class DayContext:
    """What organic behaviour on one day depends on."""

    day: int
    day_start_ns: int
    stage: np.ndarray  # (n,) true stage at the start of the day
    impressions_in_window: np.ndarray  # (n,) impressions over all topics in the fatigue window
    last_complaint_day: np.ndarray  # (n,) day index of the last complaint, very negative if none


@dataclass(frozen=True, eq=False)
class OrganicDay:
    """What today's organic events change in the state the simulator carries."""

    survey_ts_ns: np.ndarray  # (n,) survey time today, NEVER_NS if the customer answered none
    survey_score: np.ndarray  # (n,) score, NaN if none
    complainers: np.ndarray  # customer codes who complained today (not about a message)


def _times(rng: np.random.Generator, day_start_ns: int, size: int) -> np.ndarray:
    return day_start_ns + rng.integers(0, _DAY_MS, size=size, dtype=np.int64) * MS_NS


def _topics(topic_cumulative: np.ndarray, customer: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    uniform = rng.random(len(customer))
    topic = (topic_cumulative[customer] < uniform[:, None]).sum(axis=1)
    return np.minimum(topic, topic_cumulative.shape[1] - 1).astype(np.int8)


def _poisson_customers(rate: float, weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    # The latent weights redistribute the stated population rate without changing its mean.
    mean_weight = weight.mean()
    lam = rate * weight / mean_weight if mean_weight > 0 else np.zeros_like(weight)
    return np.repeat(np.arange(len(weight), dtype=np.int32), rng.poisson(lam))


def _bernoulli_customers(rate: float, n: int, rng: np.random.Generator) -> np.ndarray:
    return np.flatnonzero(rng.random(n) < rate).astype(np.int32)


def _amounts(params: SimulationParams, size: int, rng: np.random.Generator) -> np.ndarray:
    amount = params.purchase_amount_median * np.exp(rng.normal(0.0, params.purchase_amount_sigma, size))
    return np.maximum(np.round(amount, 2), 0.01)


def stage_milestones(params: SimulationParams, latents: CustomerLatents, topic_cumulative: np.ndarray,
                     from_ns: int, to_ns: int, rng: np.random.Generator, log: EventLog) -> None:
    """Add the marking event of every stage entered in ``[from_ns, to_ns)``, at the instant of entry: a
    visit into consideration, a purchase into purchase (the first of the buying phase) and into loyalty
    (the repeat purchase)."""
    web, app = params.channels.index("web"), params.channels.index("app")
    for column, kind in enumerate(("visit", "purchase", "purchase")):
        entry = latents.stage_entry_ns[:, column]
        customers = np.flatnonzero((entry >= from_ns) & (entry < to_ns)).astype(np.int32)
        topic = _topics(topic_cumulative, customers, rng)
        if kind == "visit":
            channel = np.where(rng.random(len(customers)) < params.app_visit_share, app, web)
            log.add(kind, customers, entry[customers], channel=channel, topic=topic)
        else:
            log.add(kind, customers, entry[customers], topic=topic, value=_amounts(params, len(customers), rng))


def organic_day(params: SimulationParams, latents: CustomerLatents, topic_cumulative: np.ndarray,
                context: DayContext, rng: np.random.Generator, log: EventLog) -> OrganicDay:
    """Add one day's organic events to ``log``; return what they change in the carried state."""
    n = params.customers
    web, app = params.channels.index("web"), params.channels.index("app")

    visit_weight = latents.activity * np.array(params.stage_visit_multiplier)[context.stage]
    visitors = _poisson_customers(params.visit_rate, visit_weight, rng)
    visit_channel = np.where(rng.random(len(visitors)) < params.app_visit_share, app, web)
    log.add("visit", visitors, _times(rng, context.day_start_ns, len(visitors)),
            channel=visit_channel, topic=_topics(topic_cumulative, visitors, rng))

    purchase_weight = latents.activity * np.array(params.stage_purchase_multiplier)[context.stage]
    buyers = _poisson_customers(params.purchase_rate, purchase_weight, rng)
    log.add("purchase", buyers, _times(rng, context.day_start_ns, len(buyers)),
            topic=_topics(topic_cumulative, buyers, rng), value=_amounts(params, len(buyers), rng))

    respondents = _bernoulli_customers(params.survey_rate, n, rng)
    annoyance = params.survey_fatigue_weight * np.maximum(
        context.impressions_in_window[respondents] - _SURVEY_FATIGUE_FREE, 0)
    complained = context.day - context.last_complaint_day[respondents] <= _COMPLAINT_MEMORY_DAYS
    mood = latents.satisfaction[respondents] - annoyance - params.survey_complaint_penalty * complained
    score = np.clip(np.round(mood + rng.normal(0.0, 1.0, len(respondents))), 0, 10)
    survey_ts = _times(rng, context.day_start_ns, len(respondents))
    log.add("survey", respondents, survey_ts, value=score)

    supported = _bernoulli_customers(params.support_rate, n, rng)
    log.add("support", supported, _times(rng, context.day_start_ns, len(supported)))
    complainers = _bernoulli_customers(params.complaint_base_rate, n, rng)
    log.add("complaint", complainers, _times(rng, context.day_start_ns, len(complainers)))

    today_ts = np.full(n, NEVER_NS, dtype=np.int64)
    today_score = np.full(n, np.nan)
    today_ts[respondents], today_score[respondents] = survey_ts, score
    return OrganicDay(today_ts, today_score, complainers)
