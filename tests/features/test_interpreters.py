"""The feature definitions' two interpreters: the numpy one keeps every column the former feature families
built, with its name, place and value to the bit (tests/features/worlds.py), and the numba one gives the
numpy one's matrix to the bit, in float64 and as the float32 values the model reads."""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

import numpy as np
import pytest

from engine.features.build import build_encoded_features, make_history
from engine.features.numba_interpreter import NotCompiled, compile_features
from tests.features.worlds import World, all_worlds, column_digests

PINNED = json.loads((Path(__file__).parent / "data" / "matrix_digests.json").read_text())


@cache
def _worlds() -> dict[str, World]:
    return {world.name: world for world in all_worlds()}


def test_the_pinned_worlds_are_the_worlds_built_here():
    assert sorted(_worlds()) == sorted(PINNED)


@pytest.mark.parametrize("name", sorted(PINNED))
def test_every_column_of_the_families_keeps_its_name_place_and_value(name):
    matrix = _worlds()[name].matrix()
    pinned = PINNED[name]
    assert matrix.values.shape[0] == pinned["rows"]
    kept = [n for n in matrix.names if n in pinned["digests"]]
    assert kept == pinned["names"], "a column of the families is missing or moved"
    digests = column_digests(matrix)
    changed = [n for n in pinned["names"] if digests[n] != pinned["digests"][n]]
    assert changed == []


def _same(got: np.ndarray, expected: np.ndarray, names) -> list[str]:
    equal = (got == expected) | (np.isnan(got) & np.isnan(expected))
    return [names[j] for j in np.flatnonzero(~equal.all(axis=0))]


@pytest.mark.parametrize("name", sorted(PINNED))
def test_numba_gives_the_numpy_matrix_to_the_bit(name):
    world = _worlds()[name]
    tables, customer, as_of, message, profile = world.encoded()
    names = world.spec.features.names
    expected = build_encoded_features(make_history(world.log, world.spec), tables, customer, as_of, message, profile, dtype=np.float64)
    compiled = compile_features(tables, names, wanted=None, precise=("journey_stage", "days_since_last_purchase"))
    got = compiled.build(world.log, customer, as_of, message, profile, dtype=np.float64)
    assert got.names == expected.names == names
    assert _same(got.values, expected.values, names) == []
    for column in ("journey_stage", "days_since_last_purchase"):
        np.testing.assert_array_equal(got.precise[column], expected.values[:, names.index(column)])
    rounded = compiled.build(world.log, customer, as_of, message, profile, dtype=np.float64, rounded=True)
    assert _same(rounded.values, expected.values.astype(np.float32).astype(np.float64), names) == []


def test_a_model_s_columns_in_its_order_and_costly_ones_it_never_reads_left_empty():
    world = _worlds()["simulated_seed3"]
    tables, customer, as_of, message, profile = world.encoded()
    names = ("topic_travel_affinity", "journey_stage", "msg_seen_count", "msg_days_since_shown", "msg_topic_affinity_rank")
    wanted = frozenset({"msg_days_since_shown"})
    history = make_history(world.log, world.spec)
    expected = build_encoded_features(history, tables, customer, as_of, message, profile, dtype=np.float64, names=names, wanted=wanted)
    got = compile_features(tables, names, wanted).build(world.log, customer, as_of, message, profile, dtype=np.float64)
    assert got.names == expected.names == names
    assert _same(got.values, expected.values, names) == []
    assert np.isnan(got.values[:, 2]).all()  # msg_seen_count: not wanted
    assert not np.isnan(got.values[:, 3]).all()
    full = build_encoded_features(history, tables, customer, as_of, message, profile, dtype=np.float64)
    for j, column in enumerate(("topic_travel_affinity", "journey_stage", "msg_days_since_shown", "msg_topic_affinity_rank")):
        np.testing.assert_array_equal(got.values[:, names.index(column)], full.values[:, full.names.index(column)], err_msg=column)


def test_a_term_numba_does_not_compute_is_refused_naming_the_feature():
    from dataclasses import replace

    from engine.features.definitions import terms as t
    from engine.features.definitions import Resolved

    world = _worlds()["hand_made_seed1_windows7-30-90"]
    tables, *_ = world.encoded()
    features = world.spec.features
    clicks = Resolved(features.customer, (*features.candidate, ("msg_clicks", t.CandidateCount(("click",)))))
    spec = replace(world.spec)
    object.__setattr__(spec, "features", clicks)  # a definition list with one more feature
    with pytest.raises(NotCompiled, match="feature msg_clicks: .*not computed by the numba interpreter"):
        compile_features(replace(tables, spec=spec), clicks.names, wanted=None)
