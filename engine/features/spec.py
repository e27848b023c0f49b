"""The feature specification fixed at training time and saved with the model bundle."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from engine.config import FeatureSettings
from engine.contract.schema import JOURNEY_STAGES, MESSAGES
from engine.features.encoders import ColumnEncoder, fit_encoders
from engine.features.log import CatalogVocabularies
from engine.features.vocab import Vocabulary

SPEC_VERSION = 1


@dataclass(frozen=True)
class FeatureSpec:
    settings: FeatureSettings
    vocab: CatalogVocabularies
    profile_encoders: tuple[ColumnEncoder, ...]
    message_encoders: tuple[ColumnEncoder, ...]
    # Journey stage code of each message, in the order of ``vocab.messages`` (-1: none); history features
    # by stage ("how this customer responds to purchase-stage messages") need it.
    message_stages: tuple[int, ...] = ()

    @classmethod
    def fit(cls, messages: pd.DataFrame, customers: pd.DataFrame, settings: FeatureSettings) -> FeatureSpec:
        vocab = CatalogVocabularies.from_messages(messages)
        by_id = messages.drop_duplicates("message_id").set_index("message_id").reindex(list(vocab.messages.values))
        return cls(
            settings=settings,
            vocab=vocab,
            message_stages=tuple(int(c) for c in Vocabulary(JOURNEY_STAGES).encode(by_id["journey_stage"])),
            profile_encoders=fit_encoders(customers, skip=("customer_id",)),
            message_encoders=fit_encoders(messages, skip=MESSAGES.required + MESSAGES.optional),
        )

    def to_dict(self) -> dict:
        return {
            "version": SPEC_VERSION,
            "settings": self.settings.model_dump(mode="json"),
            "channels": list(self.vocab.channels.values),
            "topics": list(self.vocab.topics.values),
            "messages": list(self.vocab.messages.values),
            "stages": list(JOURNEY_STAGES),
            "profile_encoders": [e.to_dict() for e in self.profile_encoders],
            "message_encoders": [e.to_dict() for e in self.message_encoders],
            "message_stages": list(self.message_stages),
        }

    @classmethod
    def from_dict(cls, data: dict) -> FeatureSpec:
        if data.get("version") != SPEC_VERSION:
            raise ValueError(f"feature spec version {data.get('version')!r} is not {SPEC_VERSION}")
        return cls(
            settings=FeatureSettings(**data["settings"]),
            vocab=CatalogVocabularies(
                Vocabulary(tuple(data["channels"])), Vocabulary(tuple(data["topics"])), Vocabulary(tuple(data["messages"]))
            ),
            profile_encoders=tuple(ColumnEncoder.from_dict(d) for d in data["profile_encoders"]),
            message_encoders=tuple(ColumnEncoder.from_dict(d) for d in data["message_encoders"]),
            message_stages=tuple(int(c) for c in data["message_stages"]),
        )
