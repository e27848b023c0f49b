"""Query groups for learning to rank.

A decision that showed several messages (a slate, sharing one ``decision_id``) is its own group: those
messages really competed for the same attention. Otherwise the group is customer x channel x time
window (``group_window_days``, aligned on the Unix epoch): the model then learns which of the
messages one customer received on one channel worked better, which is the question serving asks
("which message for this customer on this channel now"), while windows keep the customer's state
comparable within a group. Groups never span two splits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.timeutil import NS_PER_DAY


def assign_groups(examples: pd.DataFrame, split: np.ndarray, group_window_days: float) -> np.ndarray:
    """A group id per example (int64, dense from 0, numbered in order of first appearance); rows of a
    group are not necessarily contiguous."""
    ts = examples["ts"].astype("datetime64[ns, UTC]").array.asi8
    split = np.asarray(split, dtype=np.int64)
    decision, decisions = pd.factorize(examples["decision_id"])  # -1: no decision id
    # At least one bin, so that the look-up below works when no impression carries a decision id.
    slate_size = np.bincount(decision[decision >= 0], minlength=max(len(decisions), 1))
    in_slate = (decision >= 0) & (slate_size[np.maximum(decision, 0)] > 1)
    # Windows are aligned on the Unix epoch: an impression falls in the same window whatever the data's start.
    window = np.floor_divide(ts, int(group_window_days * NS_PER_DAY))
    # Each column is factorised on its own and the codes combined into one int64 key: the same groups as
    # factorising the tuples, at a fraction of the cost of hashing strings in pairs.
    window_codes = _factorize_columns(split, pd.factorize(examples["customer_id"])[0], pd.factorize(examples["channel"])[0], window)
    slate_codes = _factorize_columns(split, decision)
    # Slates get ids after the window groups so the two never collide.
    groups = np.where(in_slate, window_codes.max(initial=-1) + 1 + slate_codes, window_codes)
    return pd.factorize(groups)[0].astype(np.int64)


def _factorize_columns(*codes: np.ndarray) -> np.ndarray:
    """Dense ids, in order of first appearance, of the rows' tuples of integer codes (-1 allowed)."""
    key = np.zeros(len(codes[0]), dtype=np.int64)
    for column in codes:
        column = np.asarray(column, dtype=np.int64)
        shifted = column - column.min(initial=0)  # -1 (missing) becomes a code of its own
        # Re-densified after each column, so the key stays below rows x cardinality: it cannot overflow.
        key = pd.factorize(key * (int(shifted.max(initial=0)) + 1) + shifted)[0].astype(np.int64)
    return key


def group_sizes_in_order(groups: np.ndarray) -> tuple[np.ndarray | None, np.ndarray]:
    """(row order that makes each group contiguous, sizes of the groups in that order) for LightGBM.

    The order is None when every group already is one run of rows: no reordering (and no copy) needed.
    """
    groups = np.asarray(groups)
    if len(groups) == 0:
        return None, np.zeros(0, dtype=np.int64)
    boundaries = np.flatnonzero(groups[1:] != groups[:-1]) + 1
    starts = np.concatenate([[0], boundaries])
    if len(np.unique(groups[starts])) == len(starts):
        return None, np.diff(np.concatenate([starts, [len(groups)]]))
    order = np.argsort(groups, kind="stable")
    _, sizes = np.unique(groups[order], return_counts=True)
    return order, sizes
