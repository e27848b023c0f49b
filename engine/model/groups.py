"""Query groups for learning to rank.

A decision that showed several messages (a slate, sharing one ``decision_id``) is its own group: those
messages really competed for the same attention. Otherwise the group is customer x channel x time
window (``group_window_days``, counted from the start of each split): the model then learns which of the
messages one customer received on one channel worked better, which is the question serving asks
("which message for this customer on this channel now"), while windows keep the customer's state
comparable within a group. Groups never span two splits.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.timeutil import NS_PER_DAY



def assign_groups(examples: pd.DataFrame, split: np.ndarray, group_window_days: float) -> np.ndarray:
    """A group id per example (int64, dense from 0); rows of a group are not necessarily contiguous."""
    ts = examples["ts"].astype("datetime64[ns, UTC]").array.asi8
    slate_size = examples.groupby("decision_id", dropna=True)["decision_id"].transform("size")
    in_slate = (slate_size.fillna(0) > 1).to_numpy()
    window = np.floor_divide(ts - ts.min(initial=0) if len(ts) else ts, int(group_window_days * NS_PER_DAY))
    by_window = pd.MultiIndex.from_arrays(
        [split, examples["customer_id"].to_numpy(), examples["channel"].to_numpy(), window]
    )
    window_codes, _ = pd.factorize(by_window)
    slate_codes, _ = pd.factorize(pd.MultiIndex.from_arrays([split, examples["decision_id"].to_numpy()]))
    # Slates get ids after the window groups so the two never collide.
    groups = np.where(in_slate, window_codes.max(initial=-1) + 1 + slate_codes, window_codes)
    return pd.factorize(groups)[0].astype(np.int64)


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
