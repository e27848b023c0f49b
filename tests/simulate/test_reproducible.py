"""Same params and seed give identical frames and byte-identical files; another seed gives another world."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from engine.simulate import SimulationParams, simulate, write_world

TINY = SimulationParams(customers=300, days=20, messages=40, seed=11)


def _files(directory: Path) -> dict[str, bytes]:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_frames_and_bytes(tmp_path: Path) -> None:
    first, second = simulate(TINY), simulate(TINY)
    for name in ("messages", "customers", "events"):
        pd.testing.assert_frame_equal(getattr(first, name), getattr(second, name))
    pd.testing.assert_frame_equal(first.truth.impressions, second.truth.impressions)

    one = _files(write_world(first, tmp_path / "one"))
    two = _files(write_world(second, tmp_path / "two"))
    assert sorted(one) == sorted(two)
    assert {"messages.parquet", "customers.parquet", "events.parquet", "ground_truth/params.json"} <= set(one)
    assert [name for name in one if one[name] != two[name]] == []


def test_different_seed_gives_a_different_world() -> None:
    first = simulate(TINY)
    other = simulate(TINY.model_copy(update={"seed": 12}))
    columns = ["ts", "customer_id", "event_type"]
    assert not first.events[columns].equals(other.events[columns])
    assert not first.customers["segment"].equals(other.customers["segment"])


def test_text_formats_are_written_too(tmp_path: Path) -> None:
    world = simulate(TINY)
    out = write_world(world, tmp_path, fmt="csv")
    assert (out / "events.csv").exists() and (out / "messages.csv").exists()
    assert not (out / "events.parquet").exists()
    assert (out / "ground_truth" / "impressions.parquet").exists()
    assert len(pd.read_csv(out / "events.csv")) == len(world.events)


def test_each_simulated_day_is_reported() -> None:
    heard: list[tuple[int, int]] = []
    simulate(SimulationParams(customers=50, days=4, seed=2), on_day=lambda *done_days: heard.append(done_days))
    assert heard == [(1, 4), (2, 4), (3, 4), (4, 4)]
