"""``nbm simulate``: write a simulated world and its ground truth to a data directory."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from pydantic import ValidationError

from engine.config import Settings
from engine.contract.write import WRITE_FORMATS
from engine.errors import ConfigError, DataError
from engine.simulate import simulate, write_world
from engine.simulate.params import SimulationParams
from training.progress import Progress


def run_simulate(
    settings: Settings,
    *,
    out: Path,
    customers: int | None,
    days: int | None,
    messages: int | None,
    seed: int | None,
    fmt: str,
) -> None:
    if fmt not in WRITE_FORMATS:
        raise DataError(f"--format {fmt!r} is not one of {', '.join(WRITE_FORMATS)}")
    defaults = settings.simulation
    try:
        params = SimulationParams(
            customers=customers if customers is not None else defaults.customers,
            days=days if days is not None else defaults.days,
            messages=messages if messages is not None else defaults.messages,
            seed=seed if seed is not None else defaults.seed,
            end=defaults.end,
        )
    except ValidationError as exc:
        raise ConfigError(f"simulation parameters: {exc.errors()[0]['msg']}") from None
    started = time.perf_counter()
    typer.echo(f"simulating {params.customers:,} customers x {params.days} days, {params.messages} messages, seed {params.seed}")
    with Progress().bar("days") as advance:
        world = simulate(params, on_day=advance)
    typer.echo(
        f"simulated {len(world.events):,} events, {len(world.messages)} messages, "
        f"{len(world.customers):,} customers in {time.perf_counter() - started:.1f} s"
    )
    try:
        write_world(world, out, fmt=fmt)
    except OSError as exc:
        raise DataError(f"cannot write the data set: {exc.strerror or exc}", path=str(out)) from None
    typer.echo(f"wrote {out} ({fmt}) with ground truth in {Path(out) / 'ground_truth'}")
