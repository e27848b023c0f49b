"""Ranking metrics: hand-computed cases, and the vectorised code against slow per-group loops."""

from __future__ import annotations

import math
from collections import defaultdict

import numpy as np
import pandas as pd
import pytest

from engine.model.metrics import groups_that_order, mean_average_precision, ndcg_at_k, ranking_report, roc_auc

# ---------------------------------------------------------------- slow, obvious references


def _rows_by_group(groups: np.ndarray) -> dict[object, list[int]]:
    rows: dict[object, list[int]] = defaultdict(list)
    for i, g in enumerate(groups):
        rows[g].append(i)
    return rows


def _ranked(rows: list[int], scores: np.ndarray) -> list[int]:
    return sorted(rows, key=lambda i: (-scores[i], i))  # higher score first, then earlier row


def slow_ndcg(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, k: int) -> float:
    values = []
    for rows in _rows_by_group(groups).values():
        dcg = sum((2 ** labels[i] - 1) / math.log2(r + 2) for r, i in enumerate(_ranked(rows, scores)[:k]))
        ideal = sorted((labels[i] for i in rows), reverse=True)[:k]
        idcg = sum((2**label - 1) / math.log2(r + 2) for r, label in enumerate(ideal))
        if idcg > 0:
            values.append(dcg / idcg)
    return sum(values) / len(values) if values else math.nan


def slow_map(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, relevant_from: int) -> float:
    values = []
    for rows in _rows_by_group(groups).values():
        hits, precisions = 0, []
        for r, i in enumerate(_ranked(rows, scores), start=1):
            if labels[i] >= relevant_from:
                hits += 1
                precisions.append(hits / r)
        if precisions:
            values.append(sum(precisions) / len(precisions))
    return sum(values) / len(values) if values else math.nan


def slow_auc(relevant: np.ndarray, scores: np.ndarray) -> float:
    pos, neg = scores[relevant], scores[~relevant]
    if not len(pos) or not len(neg):
        return math.nan
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def random_ranking_data(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """~40 groups of 1 to 8 rows (at least one of size 1), interleaved, with string ids and tied scores."""
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, 9, size=40)
    sizes[0] = 1
    groups = np.repeat(np.array([f"g{i}" for i in range(sizes.size)]), sizes)
    rng.shuffle(groups)
    labels = rng.choice([0, 1, 2, 3], size=groups.size, p=[0.6, 0.2, 0.15, 0.05])
    scores = rng.integers(0, 6, size=groups.size) / 5  # few distinct values: many ties
    return labels, scores, groups


# ---------------------------------------------------------------- hand-computed cases


def test_ndcg_of_a_three_row_group():
    labels, scores, groups = [0, 3, 1], [0.9, 0.8, 0.1], [7, 7, 7]
    # Ranked labels 0, 3, 1 -> gains 0, 7, 1 at ranks 1, 2, 3; ideal labels 3, 1, 0 -> gains 7, 1, 0.
    assert ndcg_at_k(labels, scores, groups, 1) == 0.0  # top row has gain 0
    # NDCG@3 = (0/log2(2) + 7/log2(3) + 1/log2(4)) / (7/log2(2) + 1/log2(3) + 0/log2(4))
    expected = (7 / math.log2(3) + 1 / math.log2(4)) / (7 / 1 + 1 / math.log2(3))
    assert ndcg_at_k(labels, scores, groups, 3) == pytest.approx(expected, rel=1e-12)
    # k beyond the group size counts every row: same as k = 3.
    assert ndcg_at_k(labels, scores, groups, 10) == pytest.approx(expected, rel=1e-12)


def test_groups_without_a_positive_label_are_skipped():
    base = ndcg_at_k([0, 3, 1], [0.9, 0.8, 0.1], [1, 1, 1], 3)
    # Group 2 has only zero labels: whatever its order, it must not pull the mean towards 0 or 1.
    assert ndcg_at_k([0, 3, 1, 0, 0], [0.9, 0.8, 0.1, 0.5, 0.2], [1, 1, 1, 2, 2], 3) == base
    assert math.isnan(ndcg_at_k([0, 0], [0.1, 0.2], [1, 1], 3))
    assert math.isnan(mean_average_precision([0, 1], [0.1, 0.2], [1, 1]))  # open only: nothing relevant
    assert math.isnan(ndcg_at_k([], [], [], 3))


def test_ties_are_broken_by_input_position():
    # Equal scores: the first row ranks first. Labels 0, 2 -> DCG = 0 + 3/log2(3), IDCG = 3/log2(2) = 3.
    assert ndcg_at_k([0, 2], [0.5, 0.5], [1, 1], 2) == pytest.approx(1 / math.log2(3), rel=1e-12)
    assert ndcg_at_k([2, 0], [0.5, 0.5], [1, 1], 2) == 1.0
    # AP: relevant row ranked second -> precision 1/2.
    assert mean_average_precision([0, 2], [0.5, 0.5], [1, 1]) == 0.5
    assert mean_average_precision([2, 0], [0.5, 0.5], [1, 1]) == 1.0


def test_average_precision():
    labels, scores = [2, 0, 3, 1, 2], [5, 4, 3, 2, 1]  # already in rank order
    # relevant_from=2: relevant at ranks 1, 3, 5 -> AP = (1/1 + 2/3 + 3/5) / 3
    assert mean_average_precision(labels, scores, [0] * 5) == pytest.approx((1 + 2 / 3 + 3 / 5) / 3, rel=1e-12)
    # relevant_from=1: relevant at ranks 1, 3, 4, 5 -> AP = (1/1 + 2/3 + 3/4 + 4/5) / 4
    assert mean_average_precision(labels, scores, [0] * 5, relevant_from=1) == pytest.approx(
        (1 + 2 / 3 + 3 / 4 + 4 / 5) / 4, rel=1e-12
    )
    # Two groups: AP 1 (relevant on top) and AP 1/2 (relevant second); a third without relevant is skipped.
    assert mean_average_precision([3, 0, 0, 2, 0], [9, 1, 9, 1, 5], ["a", "a", "b", "b", "c"]) == 0.75


def test_auc_with_ties():
    assert roc_auc([True, False, True, False], [0.3, 0.3, 0.3, 0.3]) == 0.5  # constant scores
    # Pairs (relevant, irrelevant): (0.8, 0.8) tie = 1/2, (0.8, 0.1) = 1, (0.3, 0.8) = 0, (0.3, 0.1) = 1
    assert roc_auc([True, False, True, False], [0.8, 0.8, 0.3, 0.1]) == 2.5 / 4
    assert roc_auc([True, False], [1.0, 0.0]) == 1.0
    assert roc_auc([True, False], [0.0, 1.0]) == 0.0
    assert math.isnan(roc_auc([True, True], [0.1, 0.2]))
    assert math.isnan(roc_auc([False, False], [0.1, 0.2]))


def test_bad_input_is_rejected():
    with pytest.raises(ValueError, match=r"^labels, scores and groups have 2, 3 and 3 values"):
        ndcg_at_k([0, 1], [0.1, 0.2, 0.3], [1, 1, 1], 3)
    with pytest.raises(ValueError, match=r"^scores\[1\] = nan: expected a number$"):
        mean_average_precision([0, 2], [0.1, np.nan], [1, 1])
    with pytest.raises(ValueError, match=r"^k = 0: expected a positive integer$"):
        ndcg_at_k([0, 1], [0.1, 0.2], [1, 1], 0)


# ---------------------------------------------------------------- vectorised == loop


@pytest.mark.parametrize("seed", range(6))
def test_ndcg_matches_the_loop(seed: int):
    labels, scores, groups = random_ranking_data(seed)
    for k in (1, 2, 3, 5, 10):
        assert ndcg_at_k(labels, scores, groups, k) == pytest.approx(slow_ndcg(labels, scores, groups, k), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_map_matches_the_loop(seed: int):
    labels, scores, groups = random_ranking_data(seed)
    for relevant_from in (1, 2, 3):
        fast = mean_average_precision(labels, scores, groups, relevant_from)
        assert fast == pytest.approx(slow_map(labels, scores, groups, relevant_from), rel=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_auc_matches_the_pairwise_loop(seed: int):
    labels, scores, _ = random_ranking_data(seed)
    continuous = np.random.default_rng(seed).normal(size=labels.size)
    for relevant_from in (1, 2, 3):
        relevant = labels >= relevant_from
        for s in (scores, continuous):
            assert roc_auc(relevant, s) == pytest.approx(slow_auc(relevant, s), rel=1e-12)


# ---------------------------------------------------------------- report


def test_ranking_report_has_one_row_for_all_and_one_per_channel():
    labels, scores, groups = random_ranking_data(11)
    rng = np.random.default_rng(11)
    frame = pd.DataFrame(
        {"label": labels, "score": scores, "group": groups, "channel": rng.choice(["push", "email"], labels.size)}
    )
    report = ranking_report(frame, "score")

    assert list(report.index) == ["all", "email", "push"]
    assert report.index.name == "segment"
    assert list(report.columns) == ["ndcg@1", "ndcg@3", "ndcg@5", "map", "auc", "rows", "groups", "ordering_groups"]
    for segment, part in [("all", frame), ("email", frame[frame.channel == "email"])]:
        row = report.loc[segment]
        lab, sc, gr = part["label"].to_numpy(), part["score"].to_numpy(), part["group"].to_numpy()
        assert row["ndcg@3"] == pytest.approx(slow_ndcg(lab, sc, gr, 3), rel=1e-12)
        assert row["map"] == pytest.approx(slow_map(lab, sc, gr, 2), rel=1e-12)
        assert row["auc"] == pytest.approx(slow_auc(lab >= 2, sc), rel=1e-12)
        assert row["rows"] == len(part)
        assert row["groups"] == part["group"].nunique()
    assert report["rows"].dtype == np.int64
    assert report.loc["email", "rows"] + report.loc["push", "rows"] == report.loc["all", "rows"]


def test_groups_that_order_counts_groups_with_two_different_labels_as_a_slow_loop_does():
    # By hand: g1 has labels 0 and 2, g2 a single row, g3 two equal labels.
    assert groups_that_order([0, 2, 1, 1, 1], ["g1", "g1", "g2", "g3", "g3"]) == 1
    assert groups_that_order([], []) == 0
    for seed in range(5):
        labels, _, groups = random_ranking_data(seed)
        by_group = defaultdict(set)
        for label, group in zip(labels, groups):
            by_group[group].add(label)
        assert groups_that_order(labels, groups) == sum(len(seen) > 1 for seen in by_group.values())


def test_with_one_impression_per_group_every_ranking_gets_the_same_ndcg():
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 3, 200)
    groups = np.arange(200)
    values = {ndcg_at_k(labels, rng.random(200), groups, 3) for _ in range(5)}
    assert values == {1.0} and groups_that_order(labels, groups) == 0
