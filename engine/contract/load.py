"""Load a data directory: find, read and validate the three contract tables in one call."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from engine.contract.partition import ROWS_PER_PART, EventParts, parts_for
from engine.contract.read import ROW_COLUMN, SOURCE_COLUMN, find_table_files, read_table
from engine.contract.report import TableSummary, ValidationReport
from engine.contract.schema import CUSTOMERS, EVENTS, MESSAGES
from engine.contract.validate import TableResult, validate_customers, validate_events, validate_messages
from engine.errors import DataError

if TYPE_CHECKING:  # annotations only: the configuration reads the contract's vocabulary, not the reverse
    from engine.config import ValidationSettings


@dataclass(frozen=True)
class Dataset:
    """Canonical, validated tables: UTC timestamps, trimmed text, events sorted by ``ts``."""

    messages: pd.DataFrame = field(repr=False)
    customers: pd.DataFrame = field(repr=False)
    events: pd.DataFrame = field(repr=False)
    report: ValidationReport


def load_dataset(data_dir: Path | str, settings: ValidationSettings) -> Dataset:
    """Read and validate ``data_dir``.

    Raises :class:`DataError` for a problem with a whole table. Row problems never raise: they are in
    ``report.rejects``; call :func:`engine.contract.report.check_reject_share` to enforce the limit.
    """
    data_dir = Path(data_dir)
    files = _table_files(data_dir)
    messages, customers = _messages_and_customers(files)
    raw_events = read_table(files["events"], EVENTS)
    if raw_events.empty:
        raise DataError("no events: the table has a header but no rows", path=_names(files["events"]))
    events = validate_events(raw_events, messages.accepted)
    report = _report(data_dir, files, {"messages": messages, "customers": customers, "events": events}, settings,
                     _notes(raw_events, events, customers, files["customers"]))
    return Dataset(messages.accepted, customers.accepted, events.accepted, report)


@dataclass(frozen=True)
class PartedDataset:
    """A data directory whose events are split by customer (:class:`EventParts`), validated part by part:
    what decides many customers in bounded memory. Messages and customers are read whole."""

    data_dir: Path
    files: dict[str, list[Path]] = field(repr=False)
    messages: TableResult = field(repr=False)
    customers: TableResult = field(repr=False)
    events: EventParts

    def events_of(self, part: int) -> TableResult:
        """The part's events validated (every customer's events are in one part: per-customer checks hold)."""
        return validate_events(self.events.raw(part), self.messages.accepted)

    def report(self, events: list[TableResult], settings: ValidationSettings) -> ValidationReport:
        """The validation report of every part's events (``events``) with the messages and customers."""
        accepted = sum(len(e.accepted) for e in events)
        combined = TableResult(accepted=pd.DataFrame(index=range(accepted)),
                               rejects=_combine_rejects([e.rejects for e in events]),
                               rows_read=self.events.rows_read)
        ignored = sorted(set(self.events.columns) - set(EVENTS.required + EVENTS.optional) - {SOURCE_COLUMN, ROW_COLUMN, "_jsonl_error"})
        notes = (f"events columns not in the contract were ignored: {', '.join(ignored)}",) if ignored else ()
        return _report(self.data_dir, self.files, {"messages": self.messages, "customers": self.customers, "events": combined},
                       settings, notes)


def load_in_parts(data_dir: Path | str, folder: Path, *, rows_per_part: int = ROWS_PER_PART) -> PartedDataset:
    """Read and validate the messages and customers of ``data_dir`` and split its events by customer
    into parts of about ``rows_per_part`` events under ``folder`` (:meth:`PartedDataset.events_of`
    validates a part)."""
    data_dir = Path(data_dir)
    files = _table_files(data_dir)
    messages, customers = _messages_and_customers(files)
    parts = EventParts.split(files["events"], parts_for(files["events"], rows_per_part), Path(folder))
    if parts.rows_read == 0:
        raise DataError("no events: the table has a header but no rows", path=_names(files["events"]))
    return PartedDataset(data_dir, files, messages, customers, parts)


def _table_files(data_dir: Path) -> dict[str, list[Path]]:
    return {spec.name: find_table_files(data_dir, spec) for spec in (MESSAGES, CUSTOMERS, EVENTS)}


def _messages_and_customers(files: dict[str, list[Path]]) -> tuple[TableResult, TableResult]:
    messages = validate_messages(read_table(files["messages"], MESSAGES))
    if messages.accepted.empty:
        raise DataError(
            f"no valid messages ({messages.rows_read} rows read, all rejected or none present)",
            path=_names(files["messages"]),
        )
    return messages, validate_customers(read_table(files["customers"], CUSTOMERS))


def _report(data_dir: Path, files: dict[str, list[Path]], results: dict[str, TableResult], settings: ValidationSettings,
            notes: tuple[str, ...]) -> ValidationReport:
    return ValidationReport(
        data_dir=str(data_dir),
        tables=tuple(
            TableSummary(name, tuple(str(p) for p in files[name]), r.rows_read, len(r.accepted))
            for name, r in results.items()
        ),
        rejects=_combine_rejects([r.rejects for r in results.values()]),
        max_reject_share=settings.max_reject_share,
        notes=notes,
    )


def _combine_rejects(frames: list[pd.DataFrame]) -> pd.DataFrame:
    combined = pd.concat([f for f in frames if len(f)] or frames[:1], ignore_index=True)
    combined[ROW_COLUMN] = combined[ROW_COLUMN].astype("int64")
    return combined


def _names(paths: list[Path]) -> str:
    return ", ".join(str(p) for p in paths)


def _notes(raw_events: pd.DataFrame, events: TableResult, customers: TableResult, customer_files) -> tuple[str, ...]:
    notes: list[str] = []
    bookkeeping = {SOURCE_COLUMN, ROW_COLUMN, "_jsonl_error"}
    known = set(EVENTS.required + EVENTS.optional) | bookkeeping
    ignored = sorted(c for c in raw_events.columns if c not in known)
    if ignored:
        notes.append(f"events columns not in the contract were ignored: {', '.join(ignored)}")
    accepted = events.accepted
    if len(accepted):
        notes.append(f"events span {accepted['ts'].iloc[0].isoformat()} to {accepted['ts'].iloc[-1].isoformat()}")
    if customer_files and len(accepted):
        unknown = ~accepted["customer_id"].isin(customers.accepted["customer_id"])
        if unknown.any():
            notes.append(
                f"{int(unknown.sum()):,} events name {accepted.loc[unknown, 'customer_id'].nunique():,} customers "
                "that have no row in the customers table (kept; they get profile-free features)"
            )
    return tuple(notes)
