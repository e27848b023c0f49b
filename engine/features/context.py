"""What every feature family receives: the history to query, the requests, and the settings."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.config import FeatureSettings
from engine.features.history import History, Requests
from engine.features.log import CatalogVocabularies

Columns = dict[str, np.ndarray]


@dataclass(frozen=True, eq=False)
class FamilyContext:
    history: History
    requests: Requests
    vocab: CatalogVocabularies
    settings: FeatureSettings
    # The columns the caller will read (None: every one). A family may leave a costly column it is not
    # asked for as NaN: serving skips the ones its model never splits on.
    wanted: frozenset[str] | None = None

    def wants(self, name: str) -> bool:
        return self.wanted is None or name in self.wanted

    @property
    def long_window(self) -> int:
        return self.settings.windows_days[-1]

    @property
    def short_window(self) -> int:
        windows = self.settings.windows_days
        return windows[-2] if len(windows) > 1 else windows[-1]
