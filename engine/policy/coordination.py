"""Coordination across channels for one customer: at most one message per channel, no topic twice, no
offer twice. The rule, and why a channel got nothing; :mod:`engine.policy.online_coordination` applies it
(with exploration when configured).

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

import numpy as np

from engine.config import CoordinationSettings

NO_CANDIDATES = "no_candidates"
TOPIC_TAKEN = "topic_taken"
OFFER_TAKEN = "offer_taken"
CUSTOMER_CAP = "customer_cap"


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
