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

    @classmethod
    def fit(cls, messages: pd.DataFrame, customers: pd.DataFrame, settings: FeatureSettings) -> FeatureSpec:
        return cls(
            settings=settings,
            vocab=CatalogVocabularies.from_messages(messages),
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
        )
