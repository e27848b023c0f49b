"""Small seeded worlds shared by the simulator tests (a few seconds for the whole directory)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from engine.simulate import SimulatedWorld, SimulationParams, simulate, write_world

SMALL = SimulationParams(customers=1_500, days=30, seed=7)


@pytest.fixture(scope="session")
def small_params() -> SimulationParams:
    return SMALL


@pytest.fixture(scope="session")
def small_world() -> SimulatedWorld:
    return simulate(SMALL)


@pytest.fixture(scope="session")
def small_dir(small_world: SimulatedWorld, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_world(small_world, tmp_path_factory.mktemp("world"))


@pytest.fixture(scope="session")
def written_events(small_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(small_dir / "events.parquet")


@pytest.fixture(scope="session")
def written_messages(small_dir: Path) -> pd.DataFrame:
    return pd.read_parquet(small_dir / "messages.parquet")
