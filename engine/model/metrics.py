"""Offline ranking metrics over query groups: NDCG@k, MAP and ROC AUC, and a report per channel.

Rows are impressions with a graded label (0 none, 1 open, 2 click, 3 conversion), a model score and a
query-group id. Within a group rows are ranked by descending score; ties are broken by the row's position
in the input (the earlier row ranks higher), so every metric is deterministic. Everything is vectorised:
rows are sorted once by (group, -score, position) and per-group sums use ``np.add.reduceat``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike


@dataclass(frozen=True)
class _Ranked:
    """Rows reordered so that each group is contiguous and ranked by score within it."""

    labels: np.ndarray  # labels in that order
    starts: np.ndarray  # index of each group's first row
    sizes: np.ndarray  # rows per group
    rank: np.ndarray  # 1-based rank of each row within its group


def _arrays(labels: ArrayLike, scores: ArrayLike, groups: ArrayLike) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    label_arr, score_arr, group_arr = np.asarray(labels, float), np.asarray(scores, float), np.asarray(groups)
    if not len(label_arr) == len(score_arr) == len(group_arr):
        raise ValueError(
            f"labels, scores and groups have {len(label_arr)}, {len(score_arr)} and {len(group_arr)} values: "
            "expected one of each per row"
        )
    for name, values in (("labels", label_arr), ("scores", score_arr)):
        bad = np.flatnonzero(np.isnan(values))
        if bad.size:
            raise ValueError(f"{name}[{bad[0]}] = nan: expected a number")
    return label_arr, score_arr, group_arr


def _rank(labels: np.ndarray, scores: np.ndarray, groups: np.ndarray) -> _Ranked:
    _, codes = np.unique(groups, return_inverse=True)
    # lexsort sorts by the last key first and is stable: equal scores keep their input order.
    order = np.lexsort((-scores, codes))
    sorted_codes = codes[order]
    starts = np.flatnonzero(np.r_[True, sorted_codes[1:] != sorted_codes[:-1]])
    sizes = np.diff(np.r_[starts, len(order)])
    rank = np.arange(1, len(order) + 1) - np.repeat(starts, sizes)
    return _Ranked(labels[order], starts, sizes, rank)


def _mean_or_nan(values: np.ndarray) -> float:
    return float(values.mean()) if values.size else float("nan")


def ndcg_at_k(labels: ArrayLike, scores: ArrayLike, groups: ArrayLike, k: int) -> float:
    """Mean NDCG@k over the groups that contain at least one positive label (label > 0).

    DCG@k = Σ_{rank ≤ k} (2^label − 1) / log2(rank + 1); IDCG@k is the same sum over the group's labels
    sorted descending; NDCG@k = DCG@k / IDCG@k. A group without a positive label has IDCG = 0: no ranking
    of it is better or worse than another, so it says nothing about the model and is skipped (counting it
    as 0 or 1 would only shift the mean by the share of such groups). NaN when no group has a positive.
    """
    if k < 1:
        raise ValueError(f"k = {k}: expected a positive integer")
    label_arr, score_arr, group_arr = _arrays(labels, scores, groups)
    if label_arr.size == 0:
        return float("nan")
    ranked = _rank(label_arr, score_arr, group_arr)
    # Sorting by the label itself gives the ideal order; the group layout (starts, ranks) is the same.
    ideal = _rank(label_arr, label_arr, group_arr)
    discount = np.where(ranked.rank <= k, 1.0 / np.log2(ranked.rank + 1.0), 0.0)
    dcg = np.add.reduceat((2.0**ranked.labels - 1.0) * discount, ranked.starts)
    idcg = np.add.reduceat((2.0**ideal.labels - 1.0) * discount, ranked.starts)
    scored = idcg > 0
    return _mean_or_nan(dcg[scored] / idcg[scored])


def mean_average_precision(
    labels: ArrayLike, scores: ArrayLike, groups: ArrayLike, relevant_from: float = 2
) -> float:
    """Mean over groups with at least one relevant row (label ≥ relevant_from) of the average precision.

    AP = (1 / R) Σ_{relevant rows} hits(rank) / rank, over all the group's rows, where R is the number of
    relevant rows and hits(rank) the number of relevant rows ranked at or above ``rank``. The default
    ``relevant_from=2`` counts a click or better. NaN when no group has a relevant row.
    """
    label_arr, score_arr, group_arr = _arrays(labels, scores, groups)
    if label_arr.size == 0:
        return float("nan")
    ranked = _rank(label_arr, score_arr, group_arr)
    relevant = (ranked.labels >= relevant_from).astype(np.int64)
    running = np.cumsum(relevant)
    before_group = running[ranked.starts] - relevant[ranked.starts]
    hits = running - np.repeat(before_group, ranked.sizes)  # cumulative count restarted in each group
    n_relevant = np.add.reduceat(relevant, ranked.starts)
    precision_sum = np.add.reduceat(relevant * hits / ranked.rank, ranked.starts)
    scored = n_relevant > 0
    return _mean_or_nan(precision_sum[scored] / n_relevant[scored])


def roc_auc(relevant: ArrayLike, scores: ArrayLike) -> float:
    """Probability that a relevant row outscores an irrelevant one, ties counting half (Mann–Whitney U).

    AUC = (Σ_{relevant} rank − P(P + 1)/2) / (P · N), with 1-based ranks of the scores in ascending order,
    tied scores sharing their average rank; P and N count relevant and irrelevant rows. NaN when either
    class is absent.
    """
    is_relevant, score_arr = np.asarray(relevant, bool), np.asarray(scores, float)
    if is_relevant.shape != score_arr.shape:
        raise ValueError(f"relevant has {is_relevant.size} values and scores {score_arr.size}: expected the same")
    n_pos = int(is_relevant.sum())
    n_neg = is_relevant.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    _, inverse, counts = np.unique(score_arr, return_inverse=True, return_counts=True)
    average_rank = np.cumsum(counts) - counts + (counts + 1) / 2.0  # of each distinct score
    rank_sum = average_rank[inverse][is_relevant].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def groups_that_order(labels: ArrayLike, groups: ArrayLike) -> int:
    """How many groups hold at least two rows with different labels: only these can tell one ranking from
    another. A group of one impression, or of equal labels, gets the same NDCG and AP under any scores, so
    with no such group NDCG and MAP are constant and cannot compare models."""
    label_arr, group_arr = np.asarray(labels, float), np.asarray(groups)
    if label_arr.size == 0:
        return 0
    _, codes = np.unique(group_arr, return_inverse=True)
    n = int(codes.max()) + 1
    low, high = np.full(n, np.inf), np.full(n, -np.inf)
    np.minimum.at(low, codes, label_arr)
    np.maximum.at(high, codes, label_arr)
    return int(np.sum(high > low))


def _segment_metrics(
    labels: np.ndarray, scores: np.ndarray, groups: np.ndarray, ks: Sequence[int], relevant_from: float
) -> dict[str, float | int]:
    row: dict[str, float | int] = {f"ndcg@{k}": ndcg_at_k(labels, scores, groups, k) for k in ks}
    row["map"] = mean_average_precision(labels, scores, groups, relevant_from)
    row["auc"] = roc_auc(labels >= relevant_from, scores)
    row["rows"] = int(labels.size)
    row["groups"] = int(np.unique(groups).size)
    row["ordering_groups"] = groups_that_order(labels, groups)
    return row


def ranking_report(
    frame: pd.DataFrame,
    score_column: str,
    label_column: str = "label",
    group_column: str = "group",
    channel_column: str = "channel",
    ks: Sequence[int] = (1, 3, 5),
    relevant_from: float = 2,
) -> pd.DataFrame:
    """Metrics for all rows ("all") and for each channel's rows, indexed by ``segment``.

    Columns: ``ndcg@k`` for each k, ``map``, ``auc`` (label ≥ relevant_from against the score, over rows),
    ``rows``, ``groups`` and ``ordering_groups`` (:func:`groups_that_order`). A channel's row is computed
    on that channel's rows only, so a slate spanning channels is split into one group per channel there.
    """
    labels = frame[label_column].to_numpy(dtype=float)
    scores = frame[score_column].to_numpy(dtype=float)
    groups = frame[group_column].to_numpy()
    channels = frame[channel_column].to_numpy()
    segments = {"all": _segment_metrics(labels, scores, groups, ks, relevant_from)}
    for channel in sorted(pd.unique(frame[channel_column].dropna())):
        rows = channels == channel
        segments[str(channel)] = _segment_metrics(labels[rows], scores[rows], groups[rows], ks, relevant_from)
    return pd.DataFrame(list(segments.values()), index=pd.Index(list(segments), name="segment"))
