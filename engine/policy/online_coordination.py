"""Coordination across channels with exploration, for :meth:`DecisionEngine.decide_all_channels`.

:func:`engine.policy.coordination.coordinate` is greedy and deterministic. To explore without losing exact
propensities, channels take turns: the channel that holds the highest priority among the candidates still
open (channel without a message, offer not taken by another channel, topic not taken by another channel
unless allowed) draws its message by exploration among ITS open candidates; its topic and its offer are
then taken and the next turn begins, until the customer cap. The propensity logged for a channel is the
probability of its draw given the topics and offers taken before its turn: exact, as off-policy
evaluation needs. With exploration off every draw is the greedy
pick and the outcome is exactly :func:`coordinate`'s (tests check this).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.config import PolicySettings
from engine.policy.coordination import blocked_reasons, channel_reason
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


def coordinate_with_exploration(channel: np.ndarray, topic: np.ndarray, priority: np.ndarray, n_channels: int,
                                settings: PolicySettings, rngs: Sequence[np.random.Generator | None],
                                max_messages: float = float("inf"), offer: np.ndarray | None = None) -> tuple[ChannelTurn, ...]:
    """One :class:`ChannelTurn` per channel ``0..n_channels-1``; ``channel`` is each candidate's channel
    number, ``rngs`` one generator per channel (a channel's draw replays from its own decision).
    ``max_messages`` caps the channels served on top of the configured per-customer cap (e.g. what the
    global contact caps still allow). ``offer``: each candidate's offer (default: each its own)."""
    channel = np.asarray(channel, dtype=np.int64)
    topic = np.asarray(topic).astype(str)
    offer = np.arange(len(channel)).astype(str) if offer is None else np.asarray(offer).astype(str)
    priority = np.asarray(priority, dtype=np.float64)
    coordination = settings.coordination
    cap = min(coordination.max_messages_per_customer or n_channels, max_messages)
    is_open = np.ones(n_channels, dtype=bool)
    taken: list[str] = []
    taken_offers: list[str] = []
    chosen: dict[int, tuple[int, float, np.ndarray]] = {}
    while len(chosen) < cap:
        free = is_open[channel]
        if taken_offers:
            free &= ~np.isin(offer, taken_offers)
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
        taken_offers.append(str(offer[pick]))
        is_open[turn] = False
    out = []
    blocked = blocked_reasons(topic, offer, taken, taken_offers, coordination)
    for c in range(n_channels):
        if c in chosen:
            pick, propensity, first = chosen[c]
            out.append(ChannelTurn(pick, propensity, first, ""))
            continue
        out.append(ChannelTurn(-1, 0.0, np.zeros(len(channel)), channel_reason(blocked[channel == c])))
    return tuple(out)
