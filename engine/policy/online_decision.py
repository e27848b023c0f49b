"""What the online decision engine answers (:mod:`engine.policy.online`) and what it is asked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

import pandas as pd

from engine.policy.online_state import LiveEvents
from engine.policy.scored import ScoredCandidates


@dataclass(frozen=True)
class Reason:
    feature: str
    label: str
    contribution: float  # raw score units (log-odds for the binary objective); > 0 raised the score
    value: float | None = None  # the feature's value for this customer and message (None: unknown)

    @property
    def text(self) -> str:
        """The reason in a sentence, e.g. "click rate on email over the last 90 days: 4.2% (raised the score)"."""
        return f"{self.label}: {shown(self.label, self.value)} ({'raised' if self.contribution > 0 else 'lowered'} the score)"


def shown(label: str, value: float | None) -> str:
    """A feature's value as a reader reads it: rates and shares in percent, counts whole, days to a tenth."""
    if value is None:
        return "unknown"
    if "rate" in label or "share" in label:
        return f"{value:.1%}"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.1f}" if abs(value) >= 1 else f"{value:.2g}"


@dataclass(frozen=True)
class ServedMessage:
    message_id: str
    topic: str
    score: float  # the model's prediction: a probability with the binary objective
    priority: float  # what arbitration ranked it by (arbitration.py): the score's probability times levers and value
    propensity: float  # probability that exploration served this message in this slot
    reasons: tuple[Reason, ...]
    catalog: Mapping[str, object] = field(default_factory=dict)  # its row of the catalog (online_catalog.catalog_entries)


@dataclass(frozen=True)
class Displaced:
    """The channel's best message lost to another channel of the same answer: ``message_id`` was not
    served here because ``by_channel`` serves ``by_message_id`` on its topic (``topic_taken``) or offer
    (``offer_taken``) and a customer gets a topic or an offer on one channel at a time."""

    message_id: str
    reason: str
    by_channel: str
    by_message_id: str


@dataclass(frozen=True)
class Decision:
    decision_id: str
    customer_id: str
    channel: str
    as_of: pd.Timestamp  # UTC
    model_version: str
    cold_start: bool  # the bundle has neither a profile nor an event before its cutoff for this customer
    messages: tuple[ServedMessage, ...]  # best first, at most k
    suppressed: dict[str, int]  # policy rule -> candidates it removed (validity and channel are not rules)
    candidates: ScoredCandidates  # every eligible (message_id, score, propensity of slot 1)
    displaced: Displaced | None = None  # next-best-messages: the channel's best message, taken by another channel


@dataclass(frozen=True, eq=False)
class DecisionInput:
    """One request to :meth:`DecisionEngine.decide_each`: the arguments of :meth:`DecisionEngine.decide`."""

    customer_id: str
    channel: str
    as_of: pd.Timestamp
    live_events: LiveEvents | None = None  # a contract frame or contract rows (online_state.py)
    k: int = 1
    explain: bool = False
    decision_id: str | None = None


@dataclass(frozen=True, eq=False)
class CustomerInput:
    """One request to :meth:`DecisionEngine.decide_all_channels_each`: the arguments of
    :meth:`DecisionEngine.decide_all_channels`."""

    customer_id: str
    as_of: pd.Timestamp
    live_events: LiveEvents | None = None
    explain: bool = False
    decision_ids: Sequence[str] | None = None  # one per channel answered, in DecisionEngine.channels order
    channels: Sequence[str] | None = None  # the channels to answer (None: every channel of the catalog)


class CandidateScorer(Protocol):
    """What scores candidates in place of a bundle's model (:class:`DecisionEngine`'s ``scorer``)."""

    @property
    def reads(self) -> frozenset[str]:
        """The feature columns its scores read: the engine builds these (others may be left NaN)."""

    @property
    def probability(self) -> bool:
        """Its scores are probabilities; else arbitration maps them through a logistic, keeping their order."""

    def score(self, features: np.ndarray, message_ids: np.ndarray) -> np.ndarray:
        """One score per row of ``features`` (float32 values, the bundle's feature columns), the candidate
        message ``message_ids[i]``."""
