"""Exploration: choose k ordered candidates of ONE decision and log how likely each choice was.

Slots are filled one after the other, each from the candidates not chosen yet. In a slot, with probability
``rate`` the policy explores: ``epsilon_greedy`` draws uniformly, ``softmax`` draws with weights
exp(priority / temperature). Otherwise it exploits: the highest priority, ties to the earlier candidate.

The propensity logged for a slot is the probability that this candidate filled it given the earlier
slots (Plackett–Luce style); their product is the probability of the whole ordered slate. With n
remaining candidates and the chosen one the greedy pick g:

    epsilon_greedy: (1 - rate) * [chosen == g] + rate / n
    softmax:        (1 - rate) * [chosen == g] + rate * exp(p_chosen / T) / Σ exp(p / T)

so for k = 1 and rate 1 softmax gives exactly exp(p/T)/Σ, and rate 0 (or method "none") is deterministic
greedy with propensity 1.0 and draws nothing from the generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from engine.config import PolicySettings

Method = Literal["none", "epsilon_greedy", "softmax"]


@dataclass(frozen=True, eq=False)
class Selection:
    """``index`` (k,) positions of the chosen candidates in slot order; ``propensity`` (k,) per slot."""

    index: np.ndarray
    propensity: np.ndarray


def slot_distribution(priorities: np.ndarray, method: Method, rate: float, temperature: float) -> np.ndarray:
    """Probability of each candidate to fill the next slot (sums to 1); ``priorities`` are the remaining ones."""
    n = len(priorities)
    greedy = np.zeros(n)
    greedy[int(np.argmax(priorities))] = 1.0
    if method == "none" or rate == 0.0:
        return greedy
    if method == "epsilon_greedy":
        explore = np.full(n, 1.0 / n)
    elif method == "softmax":
        # Shifting by the maximum changes nothing mathematically and keeps exp() finite.
        weights = np.exp((priorities - priorities.max()) / temperature)
        explore = weights / weights.sum()
    else:
        raise ValueError(f"unknown exploration method {method!r}; expected none, epsilon_greedy or softmax")
    return (1.0 - rate) * greedy + rate * explore


def select(priorities: np.ndarray, k: int, rng: np.random.Generator | None, method: Method = "none",
           rate: float = 0.0, temperature: float = 1.0) -> Selection:
    """min(k, n) distinct candidates in slot order with their slot propensities (module docstring).
    ``rng`` may be None when nothing is drawn (method "none" or rate 0)."""
    priorities = np.asarray(priorities, dtype=np.float64)
    if np.isnan(priorities).any():
        raise ValueError("priorities contain NaN; arbitration.priority never returns NaN")
    if not 0.0 <= rate <= 1.0 or temperature <= 0 or k < 0:
        raise ValueError(f"need 0 <= rate <= 1, temperature > 0 and k >= 0 (got {rate}, {temperature}, {k})")
    if method == "none" or rate == 0.0:
        # Greedy: the slot loop below would pick the highest remaining each time, ties to the earlier
        # candidate, each with propensity 1; a stable sort gives the same slate in one call.
        index = np.argsort(-priorities, kind="stable")[: max(0, min(k, len(priorities)))]
        return Selection(index=index.astype(np.int64), propensity=np.ones(len(index)))
    remaining = np.arange(len(priorities))
    index, propensity = [], []
    for _ in range(min(k, len(priorities))):
        probs = slot_distribution(priorities[remaining], method, rate, temperature)
        if probs.max() == 1.0:
            at = int(np.argmax(probs))  # certain: no draw, so greedy decisions leave the generator untouched
        else:
            if rng is None:
                raise ValueError(f"exploration {method!r} at rate {rate} draws: it needs a generator")
            at = int(rng.choice(len(remaining), p=probs))
        index.append(int(remaining[at]))
        propensity.append(float(probs[at]))
        remaining = np.delete(remaining, at)
    return Selection(index=np.asarray(index, dtype=np.int64), propensity=np.asarray(propensity))


def greedy_slates(priorities: Sequence[np.ndarray], ks: Sequence[int]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """:func:`select` without exploration for many slates: per slate, the positions of its ``min(k, n)``
    highest priorities (ties to the earlier candidate), their propensities (1) and the first slot's
    distribution (all on the first of them). One slot, the usual case, is an argmax, not a sort."""
    choices = []
    for priority, k in zip(priorities, ks):
        priority = np.asarray(priority, dtype=np.float64)
        if k == 1 and len(priority):
            best = np.array([int(np.argmax(priority))], dtype=np.int64)  # the first of equal maxima
        else:
            best = np.argsort(-priority, kind="stable")[: max(0, min(k, len(priority)))].astype(np.int64)
        first = np.zeros(len(priority))
        first[best[:1]] = 1.0
        choices.append((best, np.ones(len(best)), first))
    return choices


def select_with(priorities: np.ndarray, k: int, rng: np.random.Generator | None, settings: PolicySettings) -> Selection:
    """:func:`select` with the method, rate and temperature of ``[policy]``."""
    return select(priorities, k, rng, settings.exploration, settings.exploration_rate, settings.softmax_temperature)
