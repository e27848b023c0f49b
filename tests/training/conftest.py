"""A small simulated world shared by the training tests that drive the ``nbm`` command."""

from __future__ import annotations

import pytest

from training.cli import main


@pytest.fixture(scope="session")
def small_world(tmp_path_factory):
    """400 customers over 45 days (seed 5): the data directory. Tests that change data copy it first."""
    data = tmp_path_factory.mktemp("small-world") / "data"
    assert main(["simulate", "--out", str(data), "--customers", "400", "--days", "45", "--seed", "5"]) == 0
    return data
