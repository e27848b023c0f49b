"""``nbm validate``: load a data directory, report per reason, write the rejects, enforce the limit."""

from __future__ import annotations

from pathlib import Path

import typer

from engine.config import Settings
from engine.contract.load import load_dataset
from engine.contract.report import check_reject_share
from engine.contract.write_rejects import check_rejects_path, write_rejects


def run_validate(settings: Settings, *, data: Path, rejects_out: Path | None) -> None:
    if rejects_out is not None:
        check_rejects_path(rejects_out)
    dataset = load_dataset(data, settings.validation)
    report = dataset.report
    typer.echo(report.render())
    if rejects_out is not None:
        path = write_rejects(report.rejects, rejects_out)
        typer.echo(f"rejects: {len(report.rejects):,} rows written to {path}")
    check_reject_share(report)
