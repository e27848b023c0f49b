"""The compiled feature matrix of a serving batch (engine/features/kernel.py CompiledFeatures) against
build_encoded_features, the families' matrix: every column, every row, to the last bit."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from engine.features.build import CatalogTable, EncodedTables, ProfileTable, build_encoded_features, make_snapshot
from engine.features.candidate_program import row_program
from engine.features.kernel import CompiledFeatures, first_difference
from engine.features.log import EventLog
from engine.features.program import customer_program
from engine.features.spec import FeatureSpec
from tests.features.test_families import AS_OF, CUSTOMERS, EVENTS, MESSAGES, SETTINGS
from tests.features.test_snapshot import _world

PRECISE = ("journey_stage", "days_since_last_purchase")
COSTLY = frozenset({"msg_seen_count", "msg_days_since_shown", "msg_topic_days_since_shown"})


def _tables(spec: FeatureSpec) -> EncodedTables:
    return EncodedTables.build(CatalogTable.from_messages(MESSAGES, spec), ProfileTable.from_customers(CUSTOMERS), spec)


def _compiled(spec: FeatureSpec, wanted: frozenset[str] | None) -> CompiledFeatures:
    customers = customer_program(spec.vocab, spec.settings, spec.message_stages)
    return CompiledFeatures(customers, row_program(_tables(spec), {n: i for i, n in enumerate(customers.names)}, wanted))


def _batch(spec: FeatureSpec, log: EventLog, as_of: np.ndarray) -> tuple:
    """Every customer of ``as_of`` (and an unknown one, -1) with every message and a row without one;
    profile rows: the one profile (row 0) for even customer codes, none (-1) for the others."""
    messages = np.arange(-1, len(spec.vocab.messages), dtype=np.int64)
    customer = np.repeat(np.arange(-1, len(as_of), dtype=np.int64), len(messages))
    at = np.where(customer >= 0, as_of[np.maximum(customer, 0)], as_of[0])
    profile = np.where(customer % 2 == 0, 0, -1).astype(np.int64)
    return make_snapshot(log, spec, as_of), customer, at, np.tile(messages, len(as_of) + 1), profile


def _assert_same(spec: FeatureSpec, batch: tuple, wanted: frozenset[str] | None, dtype: type) -> None:
    history, customer, as_of, message, profile = batch
    expected = build_encoded_features(history, _tables(spec), customer, as_of, message, profile, dtype=dtype, precise=PRECISE,
                                      wanted=wanted)
    got = _compiled(spec, wanted).build(history.log, customer, as_of, message, profile, dtype=dtype, precise=PRECISE)
    assert got.names == expected.names and got.values.dtype == expected.values.dtype
    for j, name in enumerate(expected.names):
        np.testing.assert_array_equal(got.values[:, j], expected.values[:, j], err_msg=name)
    for name in PRECISE:
        np.testing.assert_array_equal(got.precise[name], expected.precise[name], err_msg=name)


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(("wanted", "dtype"), [(None, np.float64), (None, np.float32), ("cheap", np.float32)])
def test_the_compiled_matrix_is_the_families_to_the_bit(seed, wanted, dtype):
    spec, log, as_of = _world(seed, customers=6, n=500)
    chosen = None if wanted is None else frozenset(n for n in _compiled(spec, None).names if n not in COSTLY)
    _assert_same(spec, _batch(spec, log, as_of), chosen, dtype)


def test_the_hand_made_history_of_the_family_tests():
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, SETTINGS)
    log = EventLog.from_events(EVENTS, spec.vocab)
    _assert_same(spec, _batch(spec, log, np.array([pd.Timestamp(AS_OF).value], dtype=np.int64)), None, np.float64)


def test_rounded_values_are_the_float32_matrix_held_in_float64():
    # What the decision engine builds: the compiled model reads float64, the model was trained on float32.
    spec, log, as_of = _world(7, customers=4, n=300)
    history, customer, at, message, profile = _batch(spec, log, as_of)
    expected = build_encoded_features(history, _tables(spec), customer, at, message, profile, dtype=np.float32, precise=PRECISE)
    got = _compiled(spec, None).build(history.log, customer, at, message, profile, dtype=np.float64, rounded=True, precise=PRECISE)
    assert got.values.dtype == np.float64
    np.testing.assert_array_equal(got.values, expected.values.astype(np.float64))
    for name in PRECISE:  # kept in float64 as they are, not rounded
        np.testing.assert_array_equal(got.precise[name], expected.precise[name])


def test_costly_columns_not_wanted_are_nan_and_not_computed():
    spec, log, as_of = _world(4, customers=3, n=200)
    cheap = frozenset(n for n in _compiled(spec, None).names if n not in COSTLY)
    compiled = _compiled(spec, cheap)
    assert not compiled.reads_impressions and _compiled(spec, None).reads_impressions
    history, *rows = _batch(spec, log, as_of)
    matrix = compiled.build(history.log, *rows)
    for name in COSTLY:
        assert np.isnan(matrix.values[:, matrix.names.index(name)]).all()


def test_a_program_off_from_the_families_is_caught():
    spec, log, as_of = _world(5, customers=4, n=300)
    compiled = _compiled(spec, None)
    batch = _batch(spec, log, as_of)
    assert first_difference(compiled, _tables(spec), [batch], PRECISE, None) is None
    # The candidate's topic read in the channel's place: the first column that reads it is named.
    code = compiled.rows.code.copy()
    at = compiled.rows.names.index("msg_topic_affinity")
    code[at, 1] = 0
    changed = CompiledFeatures(compiled.customers, replace(compiled.rows, code=code))
    problem = first_difference(changed, _tables(spec), [batch], PRECISE, None)
    assert problem is not None and "'msg_topic_affinity' differs" in problem


def test_only_customer_columns_are_kept_in_float64():
    spec, log, as_of = _world(6, customers=2, n=50)
    with pytest.raises(ValueError, match="msg_value"):
        history, *rows = _batch(spec, log, as_of)
        _compiled(spec, None).build(history.log, *rows, precise=("msg_value",))
