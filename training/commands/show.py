"""``nbm show``: print a few customers' next best message per channel from a scores file."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from engine.errors import DataError


def run_show(scores: Path, customers: int) -> None:
    try:
        frame = pd.read_parquet(scores) if Path(scores).suffix == ".parquet" else pd.read_csv(scores)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read the scores file: {exc}", path=str(scores)) from None
    best = frame.loc[frame["rank"] == 1]
    chosen = sorted(best["customer_id"].astype(str).unique())[:customers]
    table = best.loc[best["customer_id"].astype(str).isin(chosen)].pivot(index="customer_id", columns="channel", values="message_id")
    typer.echo(f"next best message per channel for {len(chosen)} customers ('-' = nothing served: the file's suppressed column says why):")
    typer.echo(table.fillna("-").to_string())
