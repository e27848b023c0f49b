"""Coordination across channels with exploration, for :meth:`DecisionEngine.decide_all_channels`.

The rule of :mod:`engine.policy.coordination` is greedy and deterministic. To explore without losing exact
propensities, channels take turns: the channel that holds the highest priority among the candidates still
open (channel without a message, offer not taken by another channel, topic not taken by another channel
unless allowed) draws its message by exploration among ITS open candidates; its topic and its offer are
then taken and the next turn begins, until the customer cap. The propensity logged for a channel is the
probability of its draw given the topics and offers taken before its turn: exact, as off-policy
evaluation needs. With exploration off every draw is the greedy
pick and the outcome is exactly the greedy rule's (tests check this against a plain loop,
``tests/policy/coordination_oracle.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.config import CoordinationSettings, PolicySettings
from engine.policy.coordination import CUSTOMER_CAP, NO_CANDIDATES, OFFER_TAKEN, TOPIC_TAKEN
from engine.policy.exploration import select_with, slot_distribution


@dataclass(frozen=True, eq=False)
class ChannelTurn:
    """The outcome for one channel: ``index`` into the candidate arrays (-1: none), its propensity,
    ``first`` the probability of each candidate (arrays order) to be this channel's draw (0 if it had no
    turn or the candidate's topic or offer was taken), ``reason`` why none ("" if one)."""

    index: int
    propensity: float
    first: np.ndarray
    reason: str


@dataclass(frozen=True, eq=False)
class Turns:
    """The outcome for every customer and channel of :func:`coordinate_each`: ``index[g, c]`` the candidate
    chosen for customer g on channel c (-1: none), ``propensity[g, c]`` its probability, ``reason[g, c]``
    why none ("" if one); ``first[i]`` the probability of candidate i to be its channel's draw."""

    index: np.ndarray
    propensity: np.ndarray
    reason: np.ndarray
    first: np.ndarray


def coordinate_with_exploration(channel: np.ndarray, topic: np.ndarray, priority: np.ndarray, n_channels: int,
                                settings: PolicySettings, rngs: Sequence[np.random.Generator | None],
                                max_messages: float = float("inf"), offer: np.ndarray | None = None) -> tuple[ChannelTurn, ...]:
    """One customer's :func:`coordinate_each`: one :class:`ChannelTurn` per channel ``0..n_channels-1``."""
    turns = coordinate_each(np.array([0, len(channel)]), channel, topic, priority, n_channels, settings, [rngs],
                            np.array([max_messages], dtype=np.float64), offer)
    out = []
    for c in range(n_channels):
        own = np.asarray(channel) == c
        out.append(ChannelTurn(int(turns.index[0, c]), float(turns.propensity[0, c]), np.where(own, turns.first, 0.0),
                               str(turns.reason[0, c])))
    return tuple(out)


def coordinate_each(bounds: np.ndarray, channel: np.ndarray, topic: np.ndarray, priority: np.ndarray, n_channels: int,
                    settings: PolicySettings, rngs: Sequence[Sequence[np.random.Generator | None]] | None,
                    max_messages: np.ndarray, offer: np.ndarray | None = None) -> Turns:
    """Coordination (module docstring) of several customers at once: customer g's candidates are rows
    ``bounds[g]:bounds[g + 1]``, ``channel`` each candidate's channel number, ``rngs[g]`` one generator per
    channel (a channel's draw replays from its own decision; ``rngs`` may be None when nothing is drawn),
    ``max_messages[g]`` caps the channels served on top of the configured per-customer cap (e.g. what the
    global contact caps still allow); ``offer``: each candidate's offer (default: each its own). Topics and
    offers are compared by equality: names, or integer codes (cheaper).

    Turn by turn for all customers together: in each turn every customer that may still be served gives
    the turn to the channel holding its highest open priority (ties: the earlier candidate), which then
    draws among its open candidates (without exploration: that candidate)."""
    bounds = np.asarray(bounds, dtype=np.int64)
    channel = np.asarray(channel, dtype=np.int64)
    priority = np.asarray(priority, dtype=np.float64)
    n, customers = len(channel), len(bounds) - 1
    group = np.repeat(np.arange(customers), np.diff(bounds))
    topic_code = _codes(topic)
    offer_code = np.arange(n) if offer is None else _codes(offer)
    coordination = settings.coordination
    exploring = settings.exploration != "none" and settings.exploration_rate != 0.0
    cap = np.minimum(coordination.max_messages_per_customer or n_channels, np.asarray(max_messages, dtype=np.float64))
    is_open = np.ones((customers, n_channels), dtype=bool)
    topic_taken = np.zeros((customers, int(topic_code.max(initial=-1)) + 1), dtype=bool)
    offer_taken = np.zeros((customers, int(offer_code.max(initial=-1)) + 1), dtype=bool)
    served = np.zeros(customers, dtype=np.int64)
    index = np.full((customers, n_channels), -1, dtype=np.int64)
    propensity = np.zeros((customers, n_channels))
    first = np.zeros(n)
    best_first = np.lexsort((-priority, group))  # each customer's candidates, highest priority first (stable: ties in order)
    while True:
        free = is_open[group, channel] & ~offer_taken[group, offer_code] & (served < cap)[group]
        if not coordination.allow_same_topic_across_channels:
            free &= ~topic_taken[group, topic_code]
        ranked = best_first[free[best_first]]
        if not len(ranked):
            break
        leads = ranked[np.r_[True, group[ranked][1:] != group[ranked][:-1]]]  # each customer's best open candidate
        for lead in leads.tolist():
            g, turn = int(group[lead]), int(channel[lead])
            if exploring:
                own = slice(int(bounds[g]), int(bounds[g + 1]))
                mine = own.start + np.flatnonzero(free[own] & (channel[own] == turn))
                selection = select_with(priority[mine], 1, None if rngs is None else rngs[g][turn], settings)
                first[mine] = slot_distribution(priority[mine], settings.exploration, settings.exploration_rate,
                                                settings.softmax_temperature)
                pick, p = int(mine[selection.index[0]]), float(selection.propensity[0])
            else:
                pick, p = lead, 1.0  # the greedy draw: the channel's best open candidate is the customer's
                first[pick] = 1.0
            index[g, turn], propensity[g, turn] = pick, p
            topic_taken[g, topic_code[pick]] = offer_taken[g, offer_code[pick]] = True
            is_open[g, turn] = False
            served[g] += 1
    return Turns(index, propensity, _reasons(group, channel, topic_code, offer_code, topic_taken, offer_taken, index,
                                             coordination), first)


def _reasons(group: np.ndarray, channel: np.ndarray, topic_code: np.ndarray, offer_code: np.ndarray, topic_taken: np.ndarray,
             offer_taken: np.ndarray, index: np.ndarray, coordination: CoordinationSettings) -> np.ndarray:
    """Why each customer's channel without a message has none (:func:`channel_reason`), "" where it has one."""
    customers, n_channels = index.shape
    offer_gone = offer_taken[group, offer_code]
    gone = offer_gone | (topic_taken[group, topic_code] & (not coordination.allow_same_topic_across_channels))
    key = group * n_channels + channel
    size = customers * n_channels
    count = np.bincount(key, minlength=size).reshape(customers, n_channels)
    offers = np.bincount(key, weights=offer_gone, minlength=size).reshape(customers, n_channels)
    blocked = np.bincount(key, weights=gone, minlength=size).reshape(customers, n_channels)
    reason = np.select([count == 0, offers == count, blocked == count], [NO_CANDIDATES, OFFER_TAKEN, TOPIC_TAKEN], CUSTOMER_CAP)
    return np.where(index >= 0, "", reason).astype(object)


def _codes(values: np.ndarray) -> np.ndarray:
    """Non-negative integers equal where ``values`` are: integer codes as they are (shifted past -1, an
    unknown's code), other values numbered."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.integer):
        return values.astype(np.int64) + 1
    return np.unique(values.astype(str), return_inverse=True)[1].reshape(-1).astype(np.int64)
