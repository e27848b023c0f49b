"""Why a message was ranked where it was: the strongest feature contributions, with their labels.

Input is LightGBM's ``pred_contrib`` output (SHAP values): one row per scored candidate, one column per
feature plus the bias last. The reasons are the ``n`` features with the largest absolute contribution;
exact zeros are left out (a feature that did not move the score is no reason). Labels are the feature
definitions' (engine/features/definitions/groups.py).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Contribution:
    feature: str
    label: str
    value: float  # in the model's raw score units (log-odds for the binary objective); > 0 raised it


def top_contributions(contrib: np.ndarray, feature_names: Sequence[str], labels: Mapping[str, str], n: int = 3) -> list[list[Contribution]]:
    """Per row, up to ``n`` contributions by absolute value, largest first (ties: feature order).

    ``contrib`` is (rows, len(feature_names) + 1), bias last; ``labels``: each feature's label (a name
    without one reads as its words).
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    if contrib.ndim != 2 or contrib.shape[1] != len(feature_names) + 1:
        raise ValueError(f"pred_contrib must be (rows, {len(feature_names) + 1}): one column per feature and the "
                         f"bias last; got shape {contrib.shape}")
    values = contrib[:, :-1]
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :max(n, 0)]
    names = {i: name for i, name in enumerate(feature_names)}
    label_of = {name: labels.get(name) or name.replace("_", " ") for name in feature_names}
    return [
        [Contribution(names[j], label_of[names[j]], float(values[i, j])) for j in row if values[i, j] != 0.0]
        for i, row in enumerate(order)
    ]
