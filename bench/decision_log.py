"""CPU cost of logging decisions: :meth:`SqliteDecisionLog.append` of batches of 8 decisions (as the API
logs them), at 60 and at 300 candidates per decision, on a fresh log in a temporary directory.

    .venv/bin/python bench/decision_log.py [--batches 2000 --seed 0]

Prints, per catalog size, this process's CPU time per decision (median of 5 rounds) and the bytes the log
holds per decision. Every decision of a run lists the same candidate ids in catalog order with
its own scores, as the decision engine gives a channel's eligible messages decision after decision.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd

from engine.policy.scored import ScoredCandidates
from engine.store.decisions import SqliteDecisionLog

BATCH = 8
ROUNDS = 5
AT = pd.Timestamp("2026-12-01T06:00:00Z")


def _decisions(batches: int, candidates: int, rng: np.random.Generator) -> list[list[SimpleNamespace]]:
    ids = np.array([f"msg-{i:05d}" for i in range(candidates)])
    made = []
    for b in range(batches):
        batch = []
        for d in range(BATCH):
            score = rng.random(candidates)
            best = int(np.argmax(score))
            first = np.zeros(candidates)
            first[best] = 1.0
            scored = ScoredCandidates(ids, score, first)
            batch.append(SimpleNamespace(
                decision_id=f"d{b}-{d}", customer_id=f"c{b}-{d}", channel="email", as_of=AT, model_version="1",
                cold_start=False, messages=(SimpleNamespace(message_id=str(ids[best]), propensity=1.0),),
                suppressed={"cooldown": 2}, candidates=scored))
        made.append(batch)
    return made


def _round(path: Path, batches: list[list[SimpleNamespace]]) -> float:
    with SqliteDecisionLog(path, checkpoint_every_s=3600) as log:  # no checkpoint thread turn in the timing
        started = time.process_time()
        for batch in batches:
            log.append(batch, AT)
        return (time.process_time() - started) / (len(batches) * BATCH)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--batches", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    for candidates in (60, 300):
        batches = _decisions(args.batches, candidates, np.random.default_rng(args.seed))
        costs, sizes = [], []
        for r in range(ROUNDS):
            with tempfile.TemporaryDirectory() as tmp:
                path = Path(tmp) / "events.db"
                costs.append(_round(path, batches))
                with SqliteDecisionLog(path) as log:
                    log.checkpoint()
                sizes.append(path.stat().st_size / (len(batches) * BATCH))
        print(f"{candidates} candidates: append {1e6 * float(np.median(costs)):.1f} µs CPU per decision "
              f"(rounds {', '.join(f'{1e6 * c:.1f}' for c in costs)}), {np.median(sizes) / 1024:.2f} KiB per decision")


if __name__ == "__main__":
    main()
