"""The logging policy: the marketer's rule that produced the logged impressions, with its propensities.

Per customer, channel and day it contacts a subscribed customer with the channel's contact rate, then picks
one message among that channel's messages valid at the instant by a softmax, at the exploration temperature,
over a noisy segment x message score. The score only uses what a marketer sees (the segment), so a model
that learns individual interests can beat it.

A send-moment world (``SimulationParams.send_days``) has another rule, a randomised campaign: on each send
day every customer gets one message drawn uniformly among those eligible (:func:`uniform_choice`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.simulate.params import SimulationParams
from engine.simulate.world import Catalog, CustomerLatents


def build_logging_scores(params: SimulationParams, latents: CustomerLatents, catalog: Catalog,
                         rng: np.random.Generator) -> np.ndarray:
    """(segments, messages) scores: the segment's mean topic interest, message value and noise."""
    n_segments, n_topics = len(params.segments), len(params.topics)
    centred = latents.centred_interest
    segment_taste = np.zeros((n_segments, n_topics))
    for segment in range(n_segments):  # a handful of segments, not a loop per customer
        members = latents.segment == segment
        if members.any():
            segment_taste[segment] = centred[members].mean(axis=0)
    scores = segment_taste[:, catalog.topic] + params.logging_value_weight * np.log1p(catalog.value)[None, :]
    return scores + rng.normal(0.0, params.logging_noise, size=scores.shape)


@dataclass(frozen=True, eq=False)
class ChoiceDistribution:
    """The policy's distribution over one channel's eligible messages, per segment."""

    messages: np.ndarray  # (k,) message codes, ascending
    probabilities: np.ndarray  # (segments, k), rows sum to 1


def choice_distribution(scores: np.ndarray, catalog: Catalog, channel: int, ts_ns: int,
                        temperature: float) -> ChoiceDistribution:
    """Softmax over the messages of ``channel`` valid at ``ts_ns``; empty when none is valid."""
    eligible = np.flatnonzero((catalog.channel == channel) & catalog.valid_at(ts_ns))
    logits = scores[:, eligible] / temperature
    if eligible.size:
        logits = logits - logits.max(axis=1, keepdims=True)
    weights = np.exp(logits)
    return ChoiceDistribution(eligible, weights / weights.sum(axis=1, keepdims=True))


def choose(distribution: ChoiceDistribution, segment: np.ndarray,
           uniform: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sample one message per contact by inverting the cumulative distribution of its segment.

    Returns the chosen message codes and their propensities (probability of that pick given the contact).
    """
    k = distribution.messages.size
    position = np.zeros(len(segment), dtype=np.int64)
    cumulative = np.cumsum(distribution.probabilities, axis=1)
    for code in np.unique(segment):  # one pass per segment present
        rows = segment == code
        position[rows] = np.searchsorted(cumulative[code], uniform[rows], side="right")
    position = np.minimum(position, k - 1)  # a cumulative sum may end a hair below 1
    return distribution.messages[position], distribution.probabilities[segment, position]


def contacts(subscribed: np.ndarray, contact_rate: float, uniform: np.ndarray) -> np.ndarray:
    """Customer codes the policy contacts on a channel today: subscribed ones, each with ``contact_rate``."""
    return np.flatnonzero(subscribed & (uniform < contact_rate)).astype(np.int32)


def uniform_choice(eligible: np.ndarray, uniform: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One message per row of the (customers, messages) mask ``eligible``, uniformly among the row's True
    columns, by the row's ``uniform`` in [0, 1). Returns the rows that had any eligible message, the chosen
    message codes and their propensities (1 / the row's eligible count)."""
    count = eligible.sum(axis=1)
    rows = np.flatnonzero(count > 0)
    k = np.minimum((uniform[rows] * count[rows]).astype(np.int64), count[rows] - 1)  # the k-th eligible, from 0
    rank = np.cumsum(eligible[rows], axis=1)  # eligible messages up to and including each column
    message = (rank <= k[:, None]).sum(axis=1)  # the first column where the rank passes k
    return rows, message, 1.0 / count[rows]
