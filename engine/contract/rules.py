"""Row-level rule bookkeeping: the first broken rule of a row decides its reason code.

Reason codes are stable identifiers (documented in docs/data-contract.md); the detail is a sentence for
a person, naming the column and the offending value.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


class RowVerdicts:
    """Collects at most one reason per row, in the order rules are applied."""

    def __init__(self, raw: pd.DataFrame) -> None:
        self._raw = raw
        self.reason = np.full(len(raw), None, dtype=object)
        self.detail = np.full(len(raw), None, dtype=object)
        # The column a rule is about (None for whole-row problems): the API reports it per event.
        self.column = np.full(len(raw), None, dtype=object)

    @property
    def ok(self) -> np.ndarray:
        """Rows with no reason so far."""
        return pd.isna(self.reason)

    def reject(self, mask: pd.Series | np.ndarray, code: str, explain: str, column: str | None = None) -> None:
        """Reject the rows in ``mask`` that are still clean, with ``code``.

        ``column`` names the column the rule is about; ``explain`` may contain ``{value}``: it is filled
        with the row's raw value of ``column``.
        """
        hit = np.asarray(mask, dtype=bool) & self.ok
        if not hit.any():
            return
        self.reason[hit] = code
        self.column[hit] = column
        if column is not None and "{value}" in explain and column in self._raw.columns:
            values = self._raw[column].to_numpy()[hit]
            self.detail[hit] = [explain.format(value=show_value(v)) for v in values]
        else:
            self.detail[hit] = explain

    def reject_each(self, mask: np.ndarray, code: str, details: np.ndarray, column: str | None = None) -> None:
        """:meth:`reject` with a detail of its own for each row (``details`` has one per row)."""
        hit = np.asarray(mask, dtype=bool) & self.ok
        self.reason[hit] = code
        self.column[hit] = column
        self.detail[hit] = np.asarray(details, dtype=object)[hit]

    def reject_duplicates(self, keys: pd.Series, code: str, column: str) -> None:
        """Among rows still clean, keep the first of each non-null key and reject the others."""
        clean = pd.Series(self.ok, index=keys.index) & keys.notna()
        repeated = clean & keys.where(clean).duplicated(keep="first") & keys.notna()
        self.reject(repeated.to_numpy(), code, f"{column}={{value}} appeared in an earlier row; kept once", column)


def show_value(value: object) -> str:
    """A raw value as a rule's message quotes it: empty for a missing one, long text cut."""
    text = "" if value is None or (isinstance(value, float) and np.isnan(value)) else str(value)
    return repr(text if len(text) <= 60 else text[:57] + "...")
