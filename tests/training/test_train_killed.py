"""``nbm train`` killed (SIGKILL) in each of its phases: the served bundle and the champion stay as they
were (or, once the new bundle is published, move together to the new version); a rerun completes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import mlflow
import pytest

from engine.model.bundle import load_bundle
from training.cli import main

pytestmark = pytest.mark.slow

# In run order (training/pipeline.py). Before "bundle" nothing the server reads has changed; "bundle"
# publishes the new bundle (one rename) and "promote" then moves the alias.
PHASES_BEFORE_PUBLISHING = ("validate", "examples", "fit", "evaluate", "snapshot", "champion", "track")
PUBLISHING_PHASES = ("bundle", "promote")
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A tiny world, trained once: version 1 is the champion and the current bundle."""
    root = tmp_path_factory.mktemp("killed")
    data = root / "data"
    assert main(["simulate", "--out", str(data), "--customers", "300", "--days", "40", "--seed", "9"]) == 0
    assert main(_train_args(root, data)) == 0
    return root, data


def _train_args(root: Path, data: Path) -> list[str]:
    return ["train", "--data", str(data), "--model-dir", str(root / "model"), "--tracking-uri",
            f"sqlite:///{root / 'mlflow.db'}", "--force-promote"]


def _kill_when_phase_starts(root: Path, data: Path, phase: str) -> None:
    """Run ``nbm train`` in a child process and SIGKILL it as soon as it says ``[phase] ...``."""
    child = subprocess.Popen([sys.executable, "-m", "training.cli", *_train_args(root, data)], cwd=REPO,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        for line in child.stderr:
            if line.startswith(f"[{phase}] ..."):
                os.kill(child.pid, signal.SIGKILL)
                break
        else:
            pytest.fail(f"nbm train ended (exit {child.wait()}) without starting phase {phase}")
    finally:
        child.wait(60)
    assert child.returncode == -signal.SIGKILL


def _served_and_champion(root: Path) -> tuple[str, str]:
    bundle = load_bundle(root / "model")  # loads whole, or the test fails
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    return bundle.version, str(client.get_model_version_by_alias("nbm-ranker", "champion").version)


@pytest.mark.parametrize("phase", PHASES_BEFORE_PUBLISHING)
def test_a_run_killed_before_publishing_changes_neither_the_bundle_nor_the_champion(trained, phase):
    root, data = trained
    before = _served_and_champion(root)
    _kill_when_phase_starts(root, data, phase)
    assert _served_and_champion(root) == before


@pytest.mark.parametrize("phase", PUBLISHING_PHASES)
def test_a_run_killed_while_publishing_leaves_a_loadable_bundle_and_champion_and_a_rerun_completes(trained, phase):
    root, data = trained
    served_before, champion_before = _served_and_champion(root)
    _kill_when_phase_starts(root, data, phase)
    served, champion = _served_and_champion(root)
    # Whichever step the kill hit: the bundle is the old one or the whole new one, and the alias moves
    # only after the new bundle is published, never ahead of it.
    assert served == served_before or int(served) > int(served_before)
    assert champion in (champion_before, served)
    assert main(_train_args(root, data)) == 0
    served_after, champion_after = _served_and_champion(root)
    assert served_after == champion_after and int(served_after) > int(served)
