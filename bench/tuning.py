"""What ``nbm train --tune`` gains over the fixed default settings, on two differently shaped simulated worlds.

    .venv/bin/python bench/tuning.py [--tune-minutes M] [--tune-trials N]

Each world is trained twice as a child ``nbm train`` (its own temporary model directory and MLflow store):
with the default ``[training]`` settings, then with ``--tune``. Printed per world: the validation metric the
search judges on (default settings vs the best found), the test AUC and the true normalised gain of the
model's choices (the simulator's ground truth, which the search never sees), and the settings chosen.
The search optimises the validation log loss, so a tuned model can gain on validation and not on the truth:
the bench shows both. No goal: it is a measurement.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

NBM = str(Path(sys.executable).with_name("nbm"))
TIMEOUT_SECONDS = 30 * 60


@dataclass(frozen=True)
class World:
    name: str
    customers: int
    days: int
    messages: int


# Short history and a small catalog (the simulator's least is 40 messages) vs a year and a large catalog.
WORLDS = (World("90 days, 40 messages", 3000, 90, 40), World("365 days, 300 messages", 1500, 365, 300))
GAIN = re.compile(r"^ground-truth normalised gain: (?P<gain>[\d.]+)", re.M)
AUC = re.compile(r"^test auc: model (?P<auc>[\d.]+)", re.M)


@dataclass(frozen=True)
class Outcome:
    auc: float
    gain: float
    seconds: float


def _nbm(*args: str) -> str:
    done = subprocess.run([NBM, *args], capture_output=True, text=True, timeout=TIMEOUT_SECONDS, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"nbm {' '.join(args)} exited {done.returncode}:\n{done.stderr[-3000:]}")
    return done.stdout


def _train(data: Path, folder: Path, *extra: str) -> Outcome:
    started = time.perf_counter()
    out = _nbm("train", "--data", str(data), "--model-dir", str(folder / "model"),
               "--tracking-uri", f"sqlite:///{folder / 'mlflow.db'}", *extra)
    auc, gain = AUC.search(out), GAIN.search(out)
    if auc is None or gain is None:
        raise RuntimeError(f"nbm train printed no test AUC or gain:\n{out}")
    return Outcome(float(auc["auc"]), float(gain["gain"]), time.perf_counter() - started)


def bench_world(world: World, scratch: Path, tune_minutes: float, tune_trials: int) -> None:
    data = scratch / "data"
    _nbm("simulate", "--out", str(data), "--customers", str(world.customers), "--days", str(world.days),
         "--messages", str(world.messages), "--seed", "7")
    default = _train(data, scratch / "default")
    tuned = _train(data, scratch / "tuned", "--tune", "--tune-minutes", str(tune_minutes), "--tune-trials", str(tune_trials))
    record = json.loads((scratch / "tuned" / "model" / "tuned.json").read_text())
    params = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in record["params"].items())
    print(f"{world.name} ({world.customers:,} customers):")
    print(f"  validation {record['metric']}: default {record['default_validation_value']:.5f}, tuned "
          f"{record['validation_value']:.5f} ({record['trials']} trials, {record['pruned']} pruned"
          + (", time budget reached" if record["budget_exhausted"] else "") + ")")
    print(f"  test AUC: default {default.auc:.4f}, tuned {tuned.auc:.4f} ({tuned.auc - default.auc:+.4f})")
    print(f"  true normalised gain: default {default.gain:.3f}, tuned {tuned.gain:.3f} ({tuned.gain - default.gain:+.3f})")
    print(f"  nbm train: {default.seconds:.0f} s default, {tuned.seconds:.0f} s with --tune; chosen: {params}", flush=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune-minutes", type=float, default=3.0)
    parser.add_argument("--tune-trials", type=int, default=40)
    args = parser.parse_args()
    for world in WORLDS:
        with tempfile.TemporaryDirectory(prefix="nbm-bench-tuning-") as scratch:
            bench_world(world, Path(scratch), args.tune_minutes, args.tune_trials)
    return 0


if __name__ == "__main__":
    sys.exit(main())
