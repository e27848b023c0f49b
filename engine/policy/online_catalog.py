"""The bundle's message catalog split by channel once, as arrays: what a decision reads per request.

Candidates keep catalog order within their channel (the order ``nbm score`` breaks ties in), and only
messages the model knows (in the spec's vocabulary) are candidates. A message's offer is named by the
id of its offer's first message in the spec's vocabulary (:meth:`FeatureSpec.offer_codes`): coordination
and the contact policy compare offers by that name.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from engine.contract.schema import JOURNEY_STAGES
from engine.errors import NbmError
from engine.features.spec import FeatureSpec
from engine.features.vocab import Vocabulary
from engine.policy.eligibility import valid_at
from engine.timeutil import to_ns


class UnknownChannelError(NbmError):
    """A decision was asked for a channel that has no message in the model's catalog."""


@dataclass(frozen=True, eq=False)
class ChannelMessages:
    """One channel's messages, catalog order; ``code`` indexes the spec's message vocabulary."""

    channel: str
    code: np.ndarray
    message_id: np.ndarray  # str
    topic: np.ndarray  # str
    stage: np.ndarray  # journey-stage code, -1: none
    value: np.ndarray
    valid_from_ns: np.ndarray  # NaT (int64 min): open
    valid_to_ns: np.ndarray
    offer: np.ndarray  # str: the offer (the id of its first message; a message without offer_id: its own id)

    def __len__(self) -> int:
        return len(self.code)

    def valid(self, as_of_ns: int) -> np.ndarray:
        """Positions of the messages valid at ``as_of_ns``."""
        return np.flatnonzero(valid_at(self.valid_from_ns, self.valid_to_ns, np.int64(as_of_ns)))


@dataclass(frozen=True, eq=False)
class OnlineCatalog:
    channels: tuple[str, ...]  # sorted
    by_channel: dict[str, ChannelMessages]
    message_topic: np.ndarray  # topic code of each message code of the spec (-1: unknown)
    message_offer: np.ndarray  # offer code of each message code of the spec (a message code)
    message_topic_key: np.ndarray  # each catalog message's topic numbered by its name (-1: not in the catalog)

    @property
    def offers_shared(self) -> bool:
        """Whether some offer has messages on several channels (else each message is its own offer)."""
        return bool(np.any(self.message_offer != np.arange(len(self.message_offer))))

    @classmethod
    def from_messages(cls, messages: pd.DataFrame, spec: FeatureSpec) -> OnlineCatalog:
        code = spec.vocab.messages.encode(messages["message_id"]).astype(np.int64)
        known = messages.loc[code >= 0].reset_index(drop=True)
        code = code[code >= 0]
        channel = known["channel"].astype(str).to_numpy()
        stage = (Vocabulary(JOURNEY_STAGES).encode(known["journey_stage"]).astype(np.int64)
                 if "journey_stage" in known.columns else np.full(len(known), -1, np.int64))
        value = known["value"].to_numpy(dtype=np.float64, na_value=np.nan) if "value" in known.columns else np.ones(len(known))
        bounds = {name: to_ns(known[name]) if name in known.columns else np.full(len(known), np.iinfo(np.int64).min)
                  for name in ("valid_from", "valid_to")}
        offer_codes = spec.offer_codes()
        offer = spec.vocab.messages.decode(offer_codes[code]) if len(code) else np.zeros(0, dtype=str)
        by_channel = {}
        for name in sorted(set(channel)):
            at = np.flatnonzero(channel == name)
            by_channel[name] = ChannelMessages(
                channel=name, code=code[at], message_id=known["message_id"].astype(str).to_numpy()[at].astype(str),
                topic=known["topic"].astype(str).to_numpy()[at].astype(str), stage=stage[at], value=value[at],
                valid_from_ns=bounds["valid_from"][at], valid_to_ns=bounds["valid_to"][at], offer=offer[at],
            )
        message_topic = np.full(len(spec.vocab.messages), -1, np.int64)
        message_topic[code] = spec.vocab.topics.encode(known["topic"]).astype(np.int64)
        # By name, not by the spec's vocabulary: a topic the model never saw is still a topic of its own.
        topic_key = np.full(len(spec.vocab.messages), -1, np.int64)
        topic_key[code] = pd.factorize(known["topic"].astype(str))[0]
        return cls(tuple(sorted(by_channel)), by_channel, message_topic, offer_codes, topic_key)

    def channel(self, name: str) -> ChannelMessages:
        """The channel's messages; its name in any case ("Email" is email: data files ignore case too)."""
        try:
            return self.by_channel[name] if name in self.by_channel else self.by_channel[name.strip().lower()]
        except KeyError:
            raise UnknownChannelError(f"channel {name!r} has no message in the model's catalog; channels: "
                                      f"{', '.join(self.channels)}") from None


def catalog_entries(messages: pd.DataFrame) -> dict[str, dict[str, object]]:
    """Each message's row of the catalog as plain values (text, numbers, booleans, ISO-8601 times; None
    for missing), keyed by message id: what answers show of a served message and ``GET /v1/messages`` lists."""
    def plain(value: object) -> object:
        if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NaT or value is pd.NA:
            return None
        if isinstance(value, pd.Timestamp):
            return value.isoformat()
        if isinstance(value, np.generic):
            return plain(value.item())
        return value

    rows = messages.drop_duplicates("message_id").to_dict("records")
    return {str(row["message_id"]): {str(k): plain(v) for k, v in row.items()} for row in rows}
