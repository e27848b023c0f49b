"""A decision's eligible candidates with their scores and first-slot propensities, kept as arrays.

A decision lists every candidate that passed the rules (hundreds, with a large catalog) so that nightly
training can evaluate other policies off-line. Building a tuple per candidate, only for the decision log
to take them apart again, cost more than logging them; the arrays are read as they are. It is still a
sequence of ``(message_id, score, propensity)`` tuples for every other reader.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import overload

import numpy as np


@dataclass(frozen=True, eq=False)
class ScoredCandidates(Sequence[tuple[str, float, float]]):
    message_id: np.ndarray  # text
    score: np.ndarray  # float64
    propensity: np.ndarray  # float64: the probability of being served in slot 1

    def __post_init__(self) -> None:
        if not len(self.message_id) == len(self.score) == len(self.propensity):
            raise ValueError("message_id, score and propensity must have one element per candidate")

    def __len__(self) -> int:
        return len(self.message_id)

    @overload
    def __getitem__(self, index: int) -> tuple[str, float, float]: ...
    @overload
    def __getitem__(self, index: slice) -> tuple[tuple[str, float, float], ...]: ...

    def __getitem__(self, index):
        if isinstance(index, slice):
            return tuple(self)[index]
        return str(self.message_id[index]), float(self.score[index]), float(self.propensity[index])

    def __iter__(self) -> Iterator[tuple[str, float, float]]:
        return zip(self.message_id.tolist(), self.score.tolist(), self.propensity.tolist())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Sequence) and tuple(self) == tuple(other)

    __hash__ = None  # type: ignore[assignment]  # equal to tuples, which hash: not hashable, like a list
