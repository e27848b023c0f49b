"""The ground-truth response model: pure, vectorised functions of latents and history-derived state.

Every probability combines, on the logit scale, the customer's interest in the message topic, whether the
message's journey stage matches the customer's true stage, the customer's responsiveness on the channel,
fatigue (recent same-topic exposures), repetition of the same message and an unhappy last survey.
Click implies open and conversion implies click: p_click = p_open * P(click | open), and so on.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from engine.simulate.params import SimulationParams
from engine.simulate.world import Catalog, CustomerLatents

# Opening is mostly channel habit, clicking mostly topic relevance, converting mostly journey stage: each
# factor enters each step with its own share.
_OPEN_INTEREST_SHARE = 0.5
_OPEN_STAGE_SHARE = 0.5
_CLICK_PENALTY_SHARE = 0.5
_CONVERSION_INTEREST_SHARE = 0.5
_CONVERSION_STAGE_SHARE = 0.5


def _logit(p: np.ndarray) -> np.ndarray:
    return np.log(p) - np.log1p(-p)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


@dataclass(frozen=True, eq=False)
class ResponseCoefficients:
    """The response knobs of ``SimulationParams`` as arrays indexed by channel code."""

    open_logit: np.ndarray
    click_logit: np.ndarray
    conversion_logit: np.ndarray
    unsubscribe_rate: np.ndarray
    interest_weight: float
    stage_match_lift: float
    conversion_stage_lift: np.ndarray
    fatigue_strength: float
    repetition_penalty: float
    unhappy_threshold: float
    unhappy_effect: float
    complaint_per_impression: float
    unsubscribe_fatigue: float

    @classmethod
    def from_params(cls, params: SimulationParams) -> ResponseCoefficients:
        by_channel = [params.channel(name) for name in params.channels]
        return cls(
            open_logit=_logit(np.array([c.open_rate for c in by_channel])),
            click_logit=_logit(np.array([c.click_rate for c in by_channel])),
            conversion_logit=_logit(np.array([c.conversion_rate for c in by_channel])),
            unsubscribe_rate=np.array([c.unsubscribe_rate for c in by_channel]),
            interest_weight=params.interest_weight,
            stage_match_lift=params.stage_match_lift,
            conversion_stage_lift=np.array(params.conversion_stage_lift),
            fatigue_strength=params.fatigue_strength,
            repetition_penalty=params.repetition_penalty,
            unhappy_threshold=params.unhappy_survey_threshold,
            unhappy_effect=params.unhappy_survey_effect,
            complaint_per_impression=params.complaint_per_impression,
            unsubscribe_fatigue=params.unsubscribe_fatigue,
        )


class ResponseProbabilities(NamedTuple):
    p_open: np.ndarray
    p_click: np.ndarray
    p_conversion: np.ndarray


def respond(
    coef: ResponseCoefficients,
    latents: CustomerLatents,
    catalog: Catalog,
    customer: np.ndarray,
    message: np.ndarray,
    same_topic_exposures: np.ndarray,
    times_shown: np.ndarray,
    last_survey: np.ndarray,
    true_stage: np.ndarray,
) -> ResponseProbabilities:
    """True response probabilities of showing ``message[i]`` to ``customer[i]`` in the given state.

    ``same_topic_exposures``: impressions of the message's topic in the fatigue window before the time;
    ``times_shown``: earlier impressions of this message; ``last_survey``: last score before, NaN if none;
    ``true_stage``: the customer's journey stage code at the time.
    """
    topic = catalog.topic[message]
    channel = catalog.channel[message]
    rows = latents.interest[customer]
    affinity = rows[np.arange(len(customer)), topic] - rows.mean(axis=1)
    responsiveness = latents.responsiveness[customer, channel]
    match = (catalog.stage[message] == true_stage).astype(np.float64)
    unhappy = (np.asarray(last_survey) <= coef.unhappy_threshold).astype(np.float64)  # NaN compares False
    penalty = (coef.fatigue_strength * np.asarray(same_topic_exposures, dtype=np.float64)
               + coef.repetition_penalty * np.asarray(times_shown, dtype=np.float64)
               + coef.unhappy_effect * unhappy)
    weight, lift = coef.interest_weight, coef.stage_match_lift

    open_logit = (coef.open_logit[channel] + responsiveness + _OPEN_INTEREST_SHARE * weight * affinity
                  + _OPEN_STAGE_SHARE * lift * match - penalty)
    click_logit = coef.click_logit[channel] + weight * affinity + lift * match - _CLICK_PENALTY_SHARE * penalty
    conversion_logit = (coef.conversion_logit[channel] + _CONVERSION_INTEREST_SHARE * weight * affinity
                        + coef.conversion_stage_lift[true_stage] + _CONVERSION_STAGE_SHARE * lift * match)

    p_open = _sigmoid(open_logit)
    p_click = p_open * _sigmoid(click_logit)
    p_conversion = p_click * _sigmoid(conversion_logit)
    return ResponseProbabilities(p_open, p_click, p_conversion)


def unsubscribe_probability(coef: ResponseCoefficients, channel: np.ndarray, exposures: np.ndarray) -> np.ndarray:
    """P(unsubscribing from the channel after an impression); fatigue makes it likelier."""
    return np.minimum(1.0, coef.unsubscribe_rate[channel] * (1.0 + coef.unsubscribe_fatigue * exposures))


def complaint_probability(coef: ResponseCoefficients, exposures: np.ndarray) -> np.ndarray:
    """P(complaining about an impression); fatigue makes it likelier."""
    return np.minimum(1.0, coef.complaint_per_impression * (1.0 + coef.unsubscribe_fatigue * exposures))
