"""``nbm export-decisions``: the API's decision log, one row per candidate, for off-policy evaluation."""

from __future__ import annotations

import itertools
from pathlib import Path

import pandas as pd
import typer

from engine.config import Settings
from engine.contract.write import FILE_SUFFIXES, write_frames
from engine.errors import DataError
from serving.decision_log import SqliteDecisionLog, decision_frame
from serving.store import store_path
from training.commands.export_events import parse_since


def run_export_decisions(settings: Settings, *, out: Path, since: str | None, home: Path | None) -> None:
    if Path(out).suffix not in FILE_SUFFIXES:
        raise DataError(f"unsupported output type '{Path(out).suffix}'; use {', '.join(FILE_SUFFIXES)}", path=str(out))
    since_ns = None if since is None else int(parse_since(since).value)
    path = store_path(home if home is not None else settings.paths.home)
    if not path.is_file():
        raise DataError("no decision log here: the API has logged no decision under this home (see --home)", path=str(path))
    # Read-only: works while the API keeps logging, and never changes the store.
    with SqliteDecisionLog(path, read_only=True) as log:
        chunks = itertools.chain([decision_frame([])], log.since(since_ns))
        try:
            written = write_frames(chunks, out)
        except OSError as exc:
            raise DataError(f"cannot write the export: {exc.strerror or exc}", path=str(out)) from None
    window = "" if since is None else f" decided at or after {pd.Timestamp(since_ns, tz='UTC').isoformat()}"
    typer.echo(f"exported {written:,} candidate rows{window} from {path} to {out}")
