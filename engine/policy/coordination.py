"""Coordination across channels for one customer: at most one message per channel, no topic twice.

Greedy over all candidates by priority, highest first (equal priorities: the earlier candidate): a
candidate is taken if its channel has nothing yet, its topic is not taken by another channel (unless
``allow_same_topic_across_channels``) and fewer than ``max_messages_per_customer`` channels have a
message. So the channel whose best message is strongest chooses first and weaker channels yield their
topic to it. Greedy is not the assignment with the largest total priority, but it never gives a channel a
weaker message to let another channel's weaker message through, and it is easy to explain.

A channel left without a message says why: ``no_candidates`` (nothing eligible), ``topic_taken`` (every
candidate's topic went to another channel), ``customer_cap`` (it still had a free topic, but the customer
had reached ``max_messages_per_customer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.config import CoordinationSettings

NO_CANDIDATES = "no_candidates"
TOPIC_TAKEN = "topic_taken"
CUSTOMER_CAP = "customer_cap"


@dataclass(frozen=True)
class ChannelChoice:
    """The outcome for one channel: ``index`` into the candidate arrays (-1: none) and why not, if none."""

    channel: str
    index: int
    message_id: str | None
    reason: str  # "" when a message was chosen


def coordinate(channel: np.ndarray, message_id: np.ndarray, topic: np.ndarray, priority: np.ndarray,
               settings: CoordinationSettings, channels: Sequence[str] | None = None) -> tuple[ChannelChoice, ...]:
    """One :class:`ChannelChoice` per channel, in the order of ``channels`` (default: first appearance).

    The arrays hold the eligible candidates of one customer across channels (their order within a channel
    does not matter: priority decides). Pass ``channels`` to get an answer for channels without candidates.
    """
    channel = np.asarray(channel, dtype=object).astype(str)
    message_id = np.asarray(message_id, dtype=object).astype(str)
    topic = np.asarray(topic, dtype=object).astype(str)
    priority = np.asarray(priority, dtype=np.float64)
    if not len(channel) == len(message_id) == len(topic) == len(priority):
        raise ValueError("channel, message_id, topic and priority must have one length")
    wanted = list(dict.fromkeys(channels if channels is not None else channel.tolist()))
    cap = settings.max_messages_per_customer or len(wanted)
    chosen: dict[str, int] = {}
    taken_topics: set[str] = set()
    for row in np.lexsort((np.arange(len(priority)), -priority)):
        if len(chosen) >= cap:
            break
        name, subject = str(channel[row]), str(topic[row])
        if name in chosen or name not in wanted:
            continue
        if subject in taken_topics and not settings.allow_same_topic_across_channels:
            continue
        chosen[name] = int(row)
        taken_topics.add(subject)
    return tuple(_choice(name, chosen, channel, message_id, topic, taken_topics, settings) for name in wanted)


def _choice(name: str, chosen: dict[str, int], channel: np.ndarray, message_id: np.ndarray, topic: np.ndarray,
            taken_topics: set[str], settings: CoordinationSettings) -> ChannelChoice:
    if name in chosen:
        return ChannelChoice(name, chosen[name], str(message_id[chosen[name]]), "")
    own_topics = set(topic[channel == name].tolist())
    if not own_topics:
        reason = NO_CANDIDATES
    elif own_topics <= taken_topics and not settings.allow_same_topic_across_channels:
        reason = TOPIC_TAKEN
    else:
        reason = CUSTOMER_CAP
    return ChannelChoice(name, -1, None, reason)
