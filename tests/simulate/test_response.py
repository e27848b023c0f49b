"""The response model moves in the stated direction for each factor, on a hand-made two-customer world."""

from __future__ import annotations

import numpy as np
import pytest

from engine.simulate import SimulationParams
from engine.simulate.response import ResponseCoefficients, ResponseProbabilities, respond
from engine.simulate.timeline import ALWAYS_NS, NEVER_NS
from engine.simulate.world import Catalog, CustomerLatents

PARAMS = SimulationParams()
COEF = ResponseCoefficients.from_params(PARAMS)
N_TOPICS = len(PARAMS.topics)

# Customer 0 loves topic 0 and is indifferent to topic 1; customer 1 is the mirror image.
INTEREST = np.zeros((2, N_TOPICS))
INTEREST[0, 0] = 2.0
INTEREST[1, 1] = 2.0
LATENTS = CustomerLatents(
    segment=np.zeros(2, np.int8), age_band=np.zeros(2, np.int8), interest=INTEREST,
    responsiveness=np.zeros((2, len(PARAMS.channels))), activity=np.ones(2), satisfaction=np.full(2, 8.0),
    stage_entry_ns=np.full((2, 3), NEVER_NS, dtype=np.int64),
)
# Message 0: email, topic 0, awareness; message 1: email, topic 0, loyalty.
CATALOG = Catalog(channel=np.zeros(2, np.int8), topic=np.zeros(2, np.int8), stage=np.array([0, 3], np.int8),
                  value=np.ones(2), valid_from_ns=np.full(2, ALWAYS_NS), valid_to_ns=np.full(2, NEVER_NS))


def _respond(customer: int = 0, message: int = 0, exposures: int = 0, shown: int = 0, survey: float = np.nan,
             stage: int = 0) -> ResponseProbabilities:
    return respond(COEF, LATENTS, CATALOG, np.array([customer]), np.array([message]), np.array([exposures]),
                   np.array([shown]), np.array([survey]), np.array([stage], np.int8))


def _all_lower(worse: ResponseProbabilities, better: ResponseProbabilities) -> bool:
    return all(w[0] < b[0] for w, b in zip(worse, better))


def test_probabilities_are_nested() -> None:
    p = _respond()
    assert 0 < p.p_conversion[0] < p.p_click[0] < p.p_open[0] < 1


def test_higher_interest_raises_every_probability() -> None:
    assert _all_lower(_respond(customer=1), _respond(customer=0))


@pytest.mark.parametrize("exposures", [1, 3])
def test_same_topic_exposures_lower_every_probability(exposures: int) -> None:
    assert _all_lower(_respond(exposures=exposures), _respond(exposures=exposures - 1))


def test_repeating_a_message_lowers_open_and_click() -> None:
    fresh, repeated = _respond(shown=0), _respond(shown=2)
    assert repeated.p_open[0] < fresh.p_open[0] and repeated.p_click[0] < fresh.p_click[0]


def test_unhappy_survey_lowers_response_and_a_happy_one_does_not() -> None:
    no_survey = _respond()
    assert _all_lower(_respond(survey=5.0), no_survey)
    assert _all_lower(_respond(survey=6.0), no_survey)  # 6 counts as unhappy
    assert all(h[0] == n[0] for h, n in zip(_respond(survey=9.0), no_survey))


def test_stage_match_raises_every_probability() -> None:
    assert _all_lower(_respond(message=1, stage=0), _respond(message=0, stage=0))
    assert _all_lower(_respond(message=0, stage=3), _respond(message=1, stage=3))


def test_vectorised_rows_equal_single_rows() -> None:
    batch = respond(COEF, LATENTS, CATALOG, np.array([0, 1, 0]), np.array([0, 1, 1]), np.array([0, 2, 1]),
                    np.array([1, 0, 0]), np.array([np.nan, 4.0, 8.0]), np.array([0, 3, 2], np.int8))
    singles = [_respond(0, 0, 0, 1, np.nan, 0), _respond(1, 1, 2, 0, 4.0, 3), _respond(0, 1, 1, 0, 8.0, 2)]
    for row, single in enumerate(singles):
        for column in range(3):
            assert batch[column][row] == pytest.approx(single[column][0], rel=1e-15)
