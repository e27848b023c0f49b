"""Coordination across channels for one customer: at most one message per channel, no topic twice, no
offer twice.

Greedy over all candidates by priority, highest first (equal priorities: the earlier candidate): a
candidate is taken if its channel has nothing yet, its offer (``offer_id``: one offer sent as messages on
several channels) is not taken by another channel (always: one offer twice at once is the repetition
customers punish), its topic is not taken by another channel (unless
``allow_same_topic_across_channels``) and fewer than ``max_messages_per_customer`` channels have a
message. So the channel whose best message is strongest chooses first and weaker channels yield their
topic to it. Greedy is not the assignment with the largest total priority, but it never gives a channel a
weaker message to let another channel's weaker message through, and it is easy to explain.

A channel left without a message says why: ``no_candidates`` (nothing eligible), ``offer_taken`` (every
candidate's offer went to another channel), ``topic_taken`` (every candidate's topic or offer went to
another channel, at least one by its topic), ``customer_cap`` (it still had a free topic, but the customer
had reached ``max_messages_per_customer``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.config import CoordinationSettings

NO_CANDIDATES = "no_candidates"
TOPIC_TAKEN = "topic_taken"
OFFER_TAKEN = "offer_taken"
CUSTOMER_CAP = "customer_cap"


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


def blocked_reasons(topic: np.ndarray, offer: np.ndarray, taken_topics: set[str] | list[str], taken_offers: set[str] | list[str],
                    settings: CoordinationSettings) -> np.ndarray:
    """Per candidate, what another channel took from it once coordination is done: ``offer_taken`` (its
    offer), ``topic_taken`` (its topic, when topics may not repeat) or "" (nothing)."""
    offer_gone = np.isin(offer, list(taken_offers))
    topic_gone = np.isin(topic, list(taken_topics)) & (not settings.allow_same_topic_across_channels)
    return np.where(offer_gone, OFFER_TAKEN, np.where(topic_gone, TOPIC_TAKEN, ""))


def channel_reason(blocked: np.ndarray) -> str:
    """Why a channel without a message has none, from :func:`blocked_reasons` of its candidates."""
    if not len(blocked):
        return NO_CANDIDATES
    if (blocked == OFFER_TAKEN).all():
        return OFFER_TAKEN
    if (blocked != "").all():
        return TOPIC_TAKEN
    return CUSTOMER_CAP


def _choice(name: str, chosen: dict[str, int], channel: np.ndarray, message_id: np.ndarray, blocked: np.ndarray) -> ChannelChoice:
    if name in chosen:
        return ChannelChoice(name, chosen[name], str(message_id[chosen[name]]), "")
    return ChannelChoice(name, -1, None, channel_reason(blocked[channel == name]))
