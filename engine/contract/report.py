"""The validation report: what was read, what was accepted, and why the rest was rejected."""

from __future__ import annotations

from dataclasses import dataclass, field

import pandas as pd

from engine.errors import TooManyRejectsError


@dataclass(frozen=True)
class TableSummary:
    name: str
    files: tuple[str, ...]
    rows_read: int
    rows_accepted: int

    @property
    def rows_rejected(self) -> int:
        return self.rows_read - self.rows_accepted


@dataclass(frozen=True)
class ValidationReport:
    data_dir: str
    tables: tuple[TableSummary, ...]
    rejects: pd.DataFrame = field(repr=False)
    max_reject_share: float
    notes: tuple[str, ...] = ()

    def table(self, name: str) -> TableSummary:
        return next(t for t in self.tables if t.name == name)

    @property
    def reject_counts(self) -> pd.DataFrame:
        """One row per (table, reason) with its count, largest first."""
        if self.rejects.empty:
            return pd.DataFrame({"table": [], "reason": [], "count": []})
        counts = self.rejects.groupby(["table", "reason"], sort=True).size().rename("count").reset_index()
        return counts.sort_values(["count", "table", "reason"], ascending=[False, True, True], ignore_index=True)

    @property
    def events_reject_share(self) -> float:
        events = self.table("events")
        return events.rows_rejected / events.rows_read if events.rows_read else 0.0

    @property
    def passed(self) -> bool:
        return self.events_reject_share <= self.max_reject_share

    def render(self) -> str:
        lines = [f"data: {self.data_dir}"]
        for t in self.tables:
            where = ", ".join(t.files) if t.files else "(absent)"
            lines.append(
                f"  {t.name:<10} {t.rows_accepted:>10,} accepted {t.rows_rejected:>8,} rejected  from {where}"
            )
        counts = self.reject_counts
        if len(counts):
            lines.append("rejected rows by reason:")
            lines += [f"  {r.table:<10} {r.reason:<28} {r.count:>8,}" for r in counts.itertuples()]
        lines += [f"note: {note}" for note in self.notes]
        verdict = "PASS" if self.passed else "FAIL"
        lines.append(
            f"{verdict}: {self.events_reject_share:.2%} of events rejected "
            f"(limit {self.max_reject_share:.2%}, validation.max_reject_share)"
        )
        return "\n".join(lines)


def check_reject_share(report: ValidationReport) -> None:
    """Raise when more events were rejected than the configured share allows."""
    if not report.passed:
        events = report.table("events")
        raise TooManyRejectsError(
            f"{events.rows_rejected:,} of {events.rows_read:,} events rejected "
            f"({report.events_reject_share:.2%}), above the limit of {report.max_reject_share:.2%} "
            "(validation.max_reject_share); see the reasons above and the rejects file",
            path=report.data_dir,
        )
