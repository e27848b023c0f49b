"""The feature specification fixed at training time and saved with the model bundle."""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from engine.config import FeatureSettings
from engine.contract.schema import JOURNEY_STAGES, MESSAGES
from engine.features.definitions import Catalog, Resolved, resolve
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
    # Offer code of each message, same order: the code of the first message of its offer (``offer_id``;
    # a message without one is its own offer). Empty when no offer has two messages: then there are no
    # per-offer features, and each message is its own offer (:meth:`offer_codes`).
    message_offers: tuple[int, ...] = ()

    @classmethod
    def fit(cls, messages: pd.DataFrame, customers: pd.DataFrame, settings: FeatureSettings) -> FeatureSpec:
        vocab = CatalogVocabularies.from_messages(messages)
        by_id = messages.drop_duplicates("message_id").set_index("message_id").reindex(list(vocab.messages.values))
        return cls(
            settings=settings,
            vocab=vocab,
            message_stages=tuple(int(c) for c in Vocabulary(JOURNEY_STAGES).encode(by_id["journey_stage"])),
            message_offers=message_offers(by_id.reset_index()),
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
            "message_offers": list(self.message_offers),
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
            message_offers=tuple(int(c) for c in data.get("message_offers", ())),  # absent in bundles from before offers
        )

    @cached_property
    def features(self) -> Resolved:
        """Every feature's name and term for this catalog and these settings (engine/features/definitions/groups.py)."""
        catalog = Catalog(
            channels=tuple(self.vocab.channels.values), topics=tuple(self.vocab.topics.values), shared_offers=bool(self.message_offers),
            profile_attributes=tuple((e.column, e.kind == "datetime") for e in self.profile_encoders),
            message_attributes=tuple((e.column, e.kind == "datetime") for e in self.message_encoders),
        )
        return resolve(self.settings, catalog)

    def offer_codes(self) -> np.ndarray:
        """The offer code of each message code (each message its own offer when none is shared)."""
        if self.message_offers:
            return np.asarray(self.message_offers, dtype=np.int64)
        return np.arange(len(self.vocab.messages), dtype=np.int64)


def message_offers(catalog: pd.DataFrame) -> tuple[int, ...]:
    """Per row of ``catalog`` (one per message code, in code order), the code of the first row of its offer;
    empty when every offer is one message (or there is no ``offer_id`` column)."""
    if "offer_id" not in catalog.columns or catalog["offer_id"].isna().all():
        return ()
    offer = catalog["offer_id"].astype("string")
    # A message without an offer id is an offer of its own, whatever its id (it may equal some offer's id).
    key = ("o:" + offer).fillna("m:" + catalog["message_id"].astype("string"))
    first = pd.Series(np.arange(len(key)), index=key.index).groupby(key.to_numpy(), sort=False).transform("min")
    codes = tuple(int(c) for c in first.to_numpy())
    return codes if codes != tuple(range(len(codes))) else ()
