"""Negative downsampling of the training split, for the binary objective.

Most impressions get no click. Fitting on every positive and a seeded share ``rate`` of the negatives,
each kept negative weighted ``1 / rate``, leaves the expected weighted counts, hence the fitted
probabilities, unchanged, while the rows dropped need neither features nor boosting time. Validation and
test rows are never dropped: early stopping and evaluation see the real mix. Not for ``lambdarank``:
dropping rows would change the query groups it ranks within.
"""

from __future__ import annotations

import numpy as np

from engine.model.split import TRAIN


def sample_negatives(grades: np.ndarray, split: np.ndarray, *, relevant_from: int, rate: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(mask of rows kept, weight of each kept row): training rows below ``relevant_from`` are kept with
    probability ``rate`` and weigh ``1 / rate``; every other row is kept with weight 1."""
    if not 0 < rate <= 1:
        raise ValueError(f"rate must be in (0, 1], got {rate}")
    grades, split = np.asarray(grades), np.asarray(split)
    sampled = (split == TRAIN) & (grades < relevant_from)
    draw = np.random.default_rng(seed).random(len(grades))
    keep = ~sampled | (draw < rate)
    weight = np.where(sampled[keep], 1.0 / rate, 1.0)
    return keep, weight
