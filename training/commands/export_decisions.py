"""``nbm export-decisions``: the API's decision log, one row per candidate, for off-policy evaluation."""

from __future__ import annotations

from pathlib import Path

from engine.config import Settings
from engine.store.decisions import SqliteDecisionLog, decision_frame
from training.commands.export_events import export_store


def run_export_decisions(settings: Settings, *, out: Path, since: str | None, home: Path | None) -> None:
    export_store(
        SqliteDecisionLog, decision_frame([]), settings, out=out, since=since, home=home,
        missing="no decision log here: the API has logged no decision under this home (see --home)",
        rows="candidate rows", window="decided at or after",
    )
