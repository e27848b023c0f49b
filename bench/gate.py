"""Can the promotion gate's metric tell a trained model from popularity and from random?

    .venv/bin/python bench/gate.py [--data .nbm/bench/world-gate]

On the demo's 3,000-customer simulated world, the model is fitted as ``nbm train`` fits it and the logged
test decisions are replayed through the decision engine (training/evaluate.py): the gate's metric (auto:
DR for the binary objective) and SNIPS for the model, popularity and random with their 95% intervals,
and the model's paired differences to both. The goal (issue 22): the model separates from both by more
than the interval widths, i.e. the lower bound of each paired difference is above 0. NDCG@3 and AUC, the
former gate's metrics, are printed beside them.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from engine.config import load_settings  # noqa: E402
from training.gate import resolve_gate_metric  # noqa: E402
from training.pipeline import fit_and_evaluate  # noqa: E402

NBM = str(Path(sys.executable).parent / "nbm")
WORLD = {"customers": 3000, "days": 60, "seed": 7}  # make demo's world


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=REPO / ".nbm" / "bench" / "world-gate")
    data = parser.parse_args().data
    if not (data / "events.parquet").exists():
        subprocess.run([NBM, "simulate", "--out", str(data), *(f"--{k}={v}" for k, v in WORLD.items())], check=True,
                       stdout=subprocess.DEVNULL)
    settings = load_settings(environ=False)
    started = time.perf_counter()
    evaluation = fit_and_evaluate(data, settings).evaluation
    m = evaluation.metrics()
    t = settings.training
    gate = resolve_gate_metric(t.gate_metric, t.objective, evaluation.replayed.replay.has_propensities)
    n = len(evaluation.replayed.replay.decisions)
    print(f"gate: {WORLD['customers']:,}-customer {WORLD['days']}-day world, {n:,} replayed test decisions, "
          f"{time.perf_counter() - started:.0f} s; gate metric {gate.name}", flush=True)
    missed = 0
    for metric in dict.fromkeys([gate.name, "snips"]):
        key = f"ope.{metric}"
        values = ", ".join(f"{policy} {_interval(m, prefix + key)}" for policy, prefix in
                           (("model", ""), ("popularity", "popularity."), ("random", "random.")))
        print(f"gate: {metric} {values}", flush=True)
        for other in ("popularity", "random"):
            name = f"{key}.vs.{other}"
            low, high = m[f"{name}.ci_low"], m[f"{name}.ci_high"]
            separates = low > 0
            missed += metric == gate.name and not separates
            overlap = m[f"{key}.ci_low"] <= m[f"{other}.{key}.ci_high"]
            print(f"gate: {metric} model - {other} {m[name]:+.4f} [{low:+.4f}, {high:+.4f}] (paired): "
                  f"{'separates' if separates else 'does NOT separate'} (goal: lower bound > 0); the unpaired intervals "
                  f"{'overlap' if overlap else 'do not overlap'}", flush=True)
    for metric in ("ndcg@3", "auc", "gain"):
        print(f"gate: for reference, {metric} model {m[metric]:.4f}, popularity {m['popularity.' + metric]:.4f}, "
              f"random {m['random.' + metric]:.4f}", flush=True)
    return 1 if missed else 0


def _interval(m: dict[str, float], name: str) -> str:
    return f"{m[name]:.4f} [{m[name + '.ci_low']:.4f}, {m[name + '.ci_high']:.4f}]"


if __name__ == "__main__":
    sys.exit(main())
