"""``nbm export-events``: the events the API stored, as a contract events file for the nightly training."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
import typer

from engine.config import Settings
from engine.contract.write import FILE_SUFFIXES, write_frames
from engine.errors import DataError
from engine.store.events import SqliteEventStore, store_path
from engine.store.interface import contract_frame

if TYPE_CHECKING:
    from engine.store.decisions import SqliteDecisionLog


def parse_since(text: str) -> pd.Timestamp:
    """ISO-8601; an offset is converted to UTC and a time without one is taken as UTC (as in data files)."""
    stamp = pd.to_datetime(pd.Series([text]), utc=True, format="ISO8601", errors="coerce").iloc[0]
    if pd.isna(stamp):
        raise DataError(f"--since {text!r} is not an ISO-8601 timestamp (e.g. 2026-07-01T00:00:00Z)")
    return stamp


def run_export_events(settings: Settings, *, out: Path, since: str | None, home: Path | None) -> None:
    export_store(
        SqliteEventStore, contract_frame([]), settings, out=out, since=since, home=home,
        missing="no event store here: the API has stored no event under this home (see --home)",
        rows="events", window="at or after",
    )


def export_store(
    store: type[SqliteEventStore] | type[SqliteDecisionLog], empty: pd.DataFrame, settings: Settings, *,
    out: Path, since: str | None, home: Path | None, missing: str, rows: str, window: str,
) -> None:
    """Write what ``store`` holds since ``since`` to ``out``; ``empty`` is its frame with no rows, and
    ``missing``, ``rows`` and ``window`` are the words of the error and of the summary line."""
    if Path(out).suffix not in FILE_SUFFIXES:
        raise DataError(f"unsupported output type '{Path(out).suffix}'; use {', '.join(FILE_SUFFIXES)}", path=str(out))
    since_ns = None if since is None else int(parse_since(since).value)
    path = store_path(home if home is not None else settings.paths.home)
    if not path.is_file():
        raise DataError(missing, path=str(path))
    # Read-only: exporting never changes the store, and works while the API keeps appending.
    with store(path, read_only=True) as opened:
        # The empty frame first fixes the columns, so that an export of no rows is still a valid header.
        chunks = itertools.chain([empty], opened.since(since_ns))
        try:
            written = write_frames(chunks, out)
        except OSError as exc:
            raise DataError(f"cannot write the export: {exc.strerror or exc}", path=str(out)) from None
    when = "" if since is None else f" {window} {pd.Timestamp(since_ns, tz='UTC').isoformat()}"
    typer.echo(f"exported {written:,} {rows}{when} from {path} to {out}")
