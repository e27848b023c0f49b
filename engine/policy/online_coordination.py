"""Coordination across channels with exploration, for :meth:`DecisionEngine.decide_all_channels`.

:func:`engine.policy.coordination.coordinate` is greedy and deterministic. To explore without losing exact
propensities, channels take turns: the channel that holds the highest priority among the candidates still
open (channel without a message, topic not taken by another channel unless allowed) draws its message by
exploration among ITS open candidates; its topic is then taken and the next turn begins, until the
customer cap. The propensity logged for a channel is the probability of its draw given the topics taken
before its turn: exact, as off-policy evaluation needs. With exploration off every draw is the greedy
pick and the outcome is exactly :func:`coordinate`'s (tests check this).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.config import PolicySettings
from engine.policy.coordination import CUSTOMER_CAP, NO_CANDIDATES, TOPIC_TAKEN
from engine.policy.exploration import select_with, slot_distribution


@dataclass(frozen=True, eq=False)
class ChannelTurn:
    """The outcome for one channel: ``index`` into the candidate arrays (-1: none), its propensity,
    ``first`` the probability of each candidate (arrays order) to be this channel's draw (0 if it had no
    turn or the candidate's topic was taken), ``reason`` why none ("" if one)."""

    index: int
    propensity: float
    first: np.ndarray
    reason: str


def coordinate_with_exploration(channel: np.ndarray, topic: np.ndarray, priority: np.ndarray, n_channels: int,
                                settings: PolicySettings, rngs: Sequence[np.random.Generator | None],
                                max_messages: float = float("inf")) -> tuple[ChannelTurn, ...]:
    """One :class:`ChannelTurn` per channel ``0..n_channels-1``; ``channel`` is each candidate's channel
    number, ``rngs`` one generator per channel (a channel's draw replays from its own decision).
    ``max_messages`` caps the channels served on top of the configured per-customer cap (e.g. what the
    global contact caps still allow)."""
    channel = np.asarray(channel, dtype=np.int64)
    topic = np.asarray(topic).astype(str)
    priority = np.asarray(priority, dtype=np.float64)
    coordination = settings.coordination
    cap = min(coordination.max_messages_per_customer or n_channels, max_messages)
    is_open = np.ones(n_channels, dtype=bool)
    taken: list[str] = []
    chosen: dict[int, tuple[int, float, np.ndarray]] = {}
    while len(chosen) < cap:
        free = is_open[channel]
        if taken and not coordination.allow_same_topic_across_channels:
            free &= ~np.isin(topic, taken)
        if not free.any():
            break
        candidates = np.flatnonzero(free)
        turn = int(channel[candidates[np.argmax(priority[candidates])]])  # argmax: ties go to the earlier candidate
        mine = candidates[channel[candidates] == turn]
        selection = select_with(priority[mine], 1, rngs[turn], settings)
        first = np.zeros(len(channel))
        first[mine] = slot_distribution(priority[mine], settings.exploration, settings.exploration_rate, settings.softmax_temperature)
        pick = int(mine[selection.index[0]])
        chosen[turn] = (pick, float(selection.propensity[0]), first)
        taken.append(str(topic[pick]))
        is_open[turn] = False
    out = []
    for c in range(n_channels):
        if c in chosen:
            pick, propensity, first = chosen[c]
            out.append(ChannelTurn(pick, propensity, first, ""))
            continue
        own_topics = set(topic[channel == c].tolist())
        if not own_topics:
            reason = NO_CANDIDATES
        elif own_topics <= set(taken) and not coordination.allow_same_topic_across_channels:
            reason = TOPIC_TAKEN
        else:
            reason = CUSTOMER_CAP
        out.append(ChannelTurn(-1, 0.0, np.zeros(len(channel)), reason))
    return tuple(out)
