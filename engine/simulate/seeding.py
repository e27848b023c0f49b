"""Named, independent random streams derived from the one root seed.

Each part of the simulator draws from its own stream, so changing how one part draws never shifts the
numbers another part sees; the global RNG and the wall clock are never used.
"""

from __future__ import annotations

import numpy as np

# Stable stream numbers: never renumber, only append (renumbering changes every simulated world).
STREAMS: dict[str, int] = {
    "customers": 1,
    "catalog": 2,
    "logging_policy": 3,
    "organic": 4,
    "contacts": 5,
    "outcomes": 6,
    "stage_history": 7,
    "milestones": 8,
}


def stream(seed: int, name: str, *index: int) -> np.random.Generator:
    """Generator for stream ``name`` (optionally sub-indexed, e.g. by day) of the root ``seed``."""
    sequence = np.random.SeedSequence(entropy=seed, spawn_key=(STREAMS[name], *index))
    return np.random.default_rng(sequence)
