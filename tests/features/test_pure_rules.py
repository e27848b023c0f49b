"""The small pure rules behind some features, on hand-made inputs."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from engine.config import FeatureSettings
from engine.features.definitions import terms as t
from engine.features.build import _gather_rows
from engine.features.encoders import ColumnEncoder
from engine.features.history import Requests
from engine.features.numpy_interpreter import CustomerColumns, _lines, _places, _standing, journey_stage
from engine.features.spec import FeatureSpec
from engine.features.vocab import Vocabulary
from tests.builders import messages_frame


class _GivenCounts:
    """A history that answers count(types) with the column given for types[0]: terms on hand-made inputs."""

    def __init__(self, columns: dict[str, np.ndarray]) -> None:
        self.columns = columns

    def count(self, types, requests, window_days=None):
        return self.columns[types[0]]


def _given(columns: dict[str, np.ndarray]) -> CustomerColumns:
    """Customer-level columns holding the given values, each the count of a pseudo event type of its name."""
    pairs = len(next(iter(columns.values()))) if columns else 0
    requests = Requests(np.arange(pairs), np.zeros(pairs, dtype=np.int64))
    return CustomerColumns({name: t.Count((name,)) for name in columns}, _GivenCounts(columns), requests)  # type: ignore[arg-type]


def test_infer_stage_takes_the_most_advanced_rule_that_holds():
    #            lifetime, long, conv_short, visits_short, clicks_short -> stage
    cases = [
        ((0, 0, 0, 0, 0), 0),  # nothing: awareness
        ((0, 0, 0, 1, 0), 0),  # one visit is not yet consideration
        ((0, 0, 0, 2, 0), 1),
        ((0, 0, 0, 0, 1), 1),
        ((1, 1, 0, 0, 0), 2),  # a first purchase
        ((0, 0, 1, 0, 0), 2),  # a conversion without a purchase event
        ((2, 1, 0, 5, 3), 3),  # repeat buyer, active: loyalty
        ((2, 0, 0, 5, 3), 1),  # repeat buyer gone quiet: back to consideration by behaviour
    ]
    columns = [np.array([c[0][i] for c in cases], dtype=float) for i in range(5)]
    assert list(journey_stage(*columns)) == [c[1] for c in cases]


def test_smoothed_rate_share_and_difference():
    given = _given({"clicks": np.array([0.0, 0.0, 1.0, 50.0]), "shown": np.array([0.0, 1.0, 1.0, 100.0])})
    clicks, shown = t.Column("clicks"), t.Column("shown")
    rates = given.value(t.Rate(clicks, shown, "click", prior_rate=0.2, strength=10.0))
    np.testing.assert_allclose(rates, [0.2, 2 / 11, 3 / 11, 52 / 110])  # 0 of 0 is the prior; 0 of 1 is not 0
    np.testing.assert_array_equal(given.value(t.Share(clicks, shown)), [np.nan, 0.0, 1.0, 0.5])  # no evidence: NaN
    np.testing.assert_array_equal(given.value(t.Difference(shown, clicks)), [0.0, 1.0, 0.0, 50.0])


def test_nps_groups():
    given = _given({"score": np.array([0.0, 6.0, 7.0, 8.0, 9.0, 10.0, np.nan])})
    detractor = given.value(t.NpsGroup(t.Column("score"), "detractor"))
    promoter = given.value(t.NpsGroup(t.Column("score"), "promoter"))
    np.testing.assert_array_equal(detractor, [1, 1, 0, 0, 0, 0, np.nan])
    np.testing.assert_array_equal(promoter, [0, 0, 0, 0, 1, 1, np.nan])


def test_column_encoders_choose_their_kind_and_encode():
    as_of = np.full(4, pd.Timestamp("2026-01-11T00:00:00Z").value)
    numeric = ColumnEncoder.fit("age", pd.Series(["31", "45.5", None, "20"]))
    assert numeric.kind == "numeric"
    np.testing.assert_array_equal(numeric.transform(pd.Series(["31", "x", None, "20"]), as_of), [31, np.nan, np.nan, 20])
    boolean = ColumnEncoder.fit("vip", pd.Series(["true", "False", "yes", None]))
    assert boolean.kind == "boolean"
    np.testing.assert_array_equal(boolean.transform(pd.Series(["TRUE", "no", "maybe", None]), as_of), [1, 0, np.nan, np.nan])
    dated = ColumnEncoder.fit("signup", pd.Series(["2026-01-01", "2025-12-01T12:00:00+02:00", None, "2026-01-10"]))
    assert dated.kind == "datetime"
    np.testing.assert_allclose(dated.transform(pd.Series(["2026-01-01", None, "2026-01-10T12:00:00Z", "bad"]), as_of),
                               [10, np.nan, 0.5, np.nan])
    category = ColumnEncoder.fit("segment", pd.Series(["gold", "silver", "gold", None]))
    assert (category.kind, category.categories) == ("category", ("gold", "silver"))
    np.testing.assert_array_equal(category.transform(pd.Series(["silver", "bronze", None, " gold "]), as_of), [1, np.nan, np.nan, 0])
    assert ColumnEncoder.fit("email", pd.Series([f"user{i}@x.org" for i in range(300)])) is None  # an identifier


def test_feature_spec_round_trips_through_json():
    messages = messages_frame([{"message_id": "m1", "channel": "email", "topic": "food", "offer_type": "discount"},
                               {"message_id": "m2", "channel": "sms", "topic": "home", "offer_type": "content"}])
    customers = pd.DataFrame({"customer_id": ["c1", "c2"], "segment": ["a", "b"], "age": [30, 41]})
    spec = FeatureSpec.fit(messages, customers, FeatureSettings(windows_days=(7, 28)))
    again = FeatureSpec.from_dict(json.loads(json.dumps(spec.to_dict())))
    assert again == spec
    assert [e.column for e in again.profile_encoders] == ["segment", "age"]
    assert [e.column for e in again.message_encoders] == ["offer_type"]


def test_standing_matches_a_loop_over_rows_with_ties_and_missing_values():
    rng = np.random.default_rng(7)
    names = ("a", "b", "c", "d")
    pairs = 5
    # Values from a small set (ties) with NaN (no evidence, taken as 0 as in the feature's definition).
    customer = {f"t_{n}": rng.choice([np.nan, 0.0, 0.25, 0.5, 1.0], size=pairs) for n in names}
    rows = rng.integers(0, pairs, size=60)
    codes = rng.integers(-1, len(names), size=60)
    columns, blocks = tuple(customer), {}
    at = _places(rows, codes, len(names), pairs)
    gaps, ranks = _standing(_lines(_given(customer), columns, blocks), columns, blocks)
    gap, rank = gaps.ravel()[at], ranks.ravel()[at]
    for i, (pair, code) in enumerate(zip(rows, codes)):
        if code < 0:
            assert np.isnan(gap[i]) and np.isnan(rank[i])
            continue
        values = [0.0 if np.isnan(customer[f"t_{n}"][pair]) else customer[f"t_{n}"][pair] for n in names]
        mine = values[code]
        assert gap[i] == mine - max(values)
        assert rank[i] == 1 + sum(v > mine for v in values)


def test_pick_reads_the_rows_pair_under_its_code_and_nan_for_other_codes():
    customer = {"t_a": np.array([1.0, 2.0, np.nan]), "t_b": np.array([10.0, 20.0, 30.0])}
    rows = np.array([0, 1, 2, 2, 0, 1])
    codes = np.array([0, 1, 1, 0, -1, 2])  # 2: a code no name has (a topic the features do not list)
    picked = _lines(_given(customer), ("t_a", "t_b"), {}).ravel()[_places(rows, codes, 2, 3)]
    np.testing.assert_array_equal(picked, [1.0, 20.0, 30.0, np.nan, np.nan, np.nan])
    assert np.isnan(_lines(_given(customer), (), {}).ravel()[_places(rows, codes, 0, 3)]).all()  # no names: nothing to read


def test_a_rows_place_in_a_block_of_per_pair_columns_never_wraps():
    # Training asks for hundreds of thousands of pairs, with topic codes stored as int16.
    codes = np.array([3, -1, 12, 0], dtype=np.int16)
    rows = np.array([299_999, 5, 7, 0], dtype=np.int64)
    assert _places(rows, codes, 10, 300_000).tolist() == [3 * 300_000 + 299_999, 10 * 300_000 + 5, 10 * 300_000 + 7, 0]


def test_a_vocabulary_decodes_codes_to_values_and_unknown_to_empty_text():
    vocab = Vocabulary(("email", "sms"))
    assert vocab.decode(np.array([1, -1, 0, 1])).tolist() == ["sms", "", "email", "sms"]
    assert vocab.decode(np.array([], dtype=np.int64)).tolist() == []
    assert vocab.decode(vocab.encode(["sms", "fax", None])).tolist() == ["sms", "", ""]  # encode's -1 reads back as ""


@pytest.mark.parametrize("pair", [
    np.repeat([0, 1, 2], [3, 1, 4]),  # runs, as serving builds them
    np.array([2, 0, 2, 1, 1, 0]),  # any order
    np.arange(200) % 7,  # more runs than are written one at a time
    np.zeros(0, dtype=np.int64),
])
def test_gather_rows_is_a_gather(pair):
    block = np.arange(3 * 7 * 4, dtype=np.float64).reshape(-1, 4)[:7]
    out = np.full((len(pair), 6), -1.0)
    _gather_rows(block, pair, out=out[:, 1:5])
    np.testing.assert_array_equal(out[:, 1:5], block[pair])
    assert (out[:, [0, 5]] == -1).all()  # the columns around it are untouched


@pytest.mark.parametrize("order", ["sorted", "shuffled", "later instants first"])
def test_pairs_index_each_rows_customer_and_instant(order):
    from engine.features.build import _pairs

    rng = np.random.default_rng(11)
    customer = np.repeat(np.array([0, 0, 2, 5, 5, 7], dtype=np.int64), [3, 2, 4, 1, 2, 3])
    as_of = np.repeat(np.array([10, 20, 10, 10, 30, 10], dtype=np.int64), [3, 2, 4, 1, 2, 3])
    if order == "shuffled":
        at = rng.permutation(len(customer))
        customer, as_of = customer[at], as_of[at]
    elif order == "later instants first":  # customers in order, their instants not
        at = np.lexsort((-as_of, customer))
        customer, as_of = customer[at], as_of[at]
    pair, pair_customer, pair_as_of = _pairs(customer, as_of)
    expected = sorted(set(zip(customer.tolist(), as_of.tolist())))  # pairs in (customer, as_of) order
    assert list(zip(pair_customer.tolist(), pair_as_of.tolist())) == expected
    assert [expected[p] for p in pair.tolist()] == list(zip(customer.tolist(), as_of.tolist()))
