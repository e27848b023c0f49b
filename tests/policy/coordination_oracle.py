"""The greedy coordination across channels written as plainly as it reads (:mod:`engine.policy.coordination`):
the oracle that :func:`engine.policy.online_coordination.coordinate_with_exploration` must equal with
exploration off."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.config import CoordinationSettings
from engine.policy.coordination import blocked_reasons, channel_reason


@dataclass(frozen=True)
class ChannelChoice:
    """The outcome for one channel: ``index`` into the candidate arrays (-1: none) and why not, if none."""

    channel: str
    index: int
    message_id: str | None
    reason: str  # "" when a message was chosen


def coordinate(channel: np.ndarray, message_id: np.ndarray, topic: np.ndarray, priority: np.ndarray,
               settings: CoordinationSettings, channels: Sequence[str] | None = None,
               offer: np.ndarray | None = None) -> tuple[ChannelChoice, ...]:
    """One :class:`ChannelChoice` per channel, in the order of ``channels`` (default: first appearance).

    The arrays hold the eligible candidates of one customer across channels (their order within a channel
    does not matter: priority decides). Pass ``channels`` to get an answer for channels without candidates.
    ``offer``: each candidate's offer (default: its message id, each message its own offer).
    """
    channel = np.asarray(channel, dtype=object).astype(str)
    message_id = np.asarray(message_id, dtype=object).astype(str)
    topic = np.asarray(topic, dtype=object).astype(str)
    offer = message_id if offer is None else np.asarray(offer, dtype=object).astype(str)
    priority = np.asarray(priority, dtype=np.float64)
    if not len(channel) == len(message_id) == len(topic) == len(priority) == len(offer):
        raise ValueError("channel, message_id, topic, priority and offer must have one length")
    wanted = list(dict.fromkeys(channels if channels is not None else channel.tolist()))
    cap = settings.max_messages_per_customer or len(wanted)
    chosen: dict[str, int] = {}
    taken_topics: set[str] = set()
    taken_offers: set[str] = set()
    for row in np.lexsort((np.arange(len(priority)), -priority)):
        if len(chosen) >= cap:
            break
        name, subject = str(channel[row]), str(topic[row])
        if name in chosen or name not in wanted or str(offer[row]) in taken_offers:
            continue
        if subject in taken_topics and not settings.allow_same_topic_across_channels:
            continue
        chosen[name] = int(row)
        taken_topics.add(subject)
        taken_offers.add(str(offer[row]))
    blocked = blocked_reasons(topic, offer, taken_topics, taken_offers, settings)
    return tuple(_choice(name, chosen, channel, message_id, blocked) for name in wanted)


def _choice(name: str, chosen: dict[str, int], channel: np.ndarray, message_id: np.ndarray, blocked: np.ndarray) -> ChannelChoice:
    if name in chosen:
        return ChannelChoice(name, chosen[name], str(message_id[chosen[name]]), "")
    return ChannelChoice(name, -1, None, channel_reason(blocked[channel == name]))
