"""ScoredCandidates: arrays that read as the tuples (message_id, score, propensity) they stand for."""

from __future__ import annotations

import numpy as np
import pytest

from engine.policy.scored import ScoredCandidates

SCORED = ScoredCandidates(np.array(["m1", "m2"]), np.array([0.25, 0.75]), np.array([0.5, 0.5]))


def test_it_reads_as_a_tuple_of_candidate_tuples():
    assert len(SCORED) == 2
    assert SCORED[1] == ("m2", 0.75, 0.5) and type(SCORED[1][0]) is str and type(SCORED[1][1]) is float
    assert list(SCORED) == [("m1", 0.25, 0.5), ("m2", 0.75, 0.5)]
    assert SCORED[:1] == (("m1", 0.25, 0.5),)
    assert SCORED == (("m1", 0.25, 0.5), ("m2", 0.75, 0.5)) and SCORED != (("m1", 0.25, 0.5),)
    assert ScoredCandidates(np.array([], dtype=str), np.zeros(0), np.zeros(0)) == ()
    ids, scores, first = zip(*SCORED)
    assert ids == ("m1", "m2") and scores == (0.25, 0.75) and first == (0.5, 0.5)


def test_arrays_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match="one element per candidate"):
        ScoredCandidates(np.array(["m1"]), np.zeros(2), np.zeros(2))
