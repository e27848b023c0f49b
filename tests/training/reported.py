"""A tiny evaluation and gate verdict written by hand, for the tests of what the MLflow run page shows."""

from __future__ import annotations

import pandas as pd

from training.evaluate import Evaluation
from training.gate import GateDecision

DECISION = GateDecision(True, "promoted: first model, dr 0.0500 [0.0400, 0.0600] vs popularity 0.0300")
DATA_STATS = {"events": 1234, "customers": 56, "messages": 7, "impressions": 890, "rejected_rows": 2,
              "start": "2026-01-01T00:00:00+00:00", "end": "2026-01-31T23:30:00+00:00"}
SPLIT = {"validation_start": "2026-01-20T00:00:00+00:00", "test_start": "2026-01-25T00:00:00+00:00",
         "end": "2026-01-31T23:30:00+00:00", "train_rows": 600, "validation_rows": 140, "test_rows": 150}


def tiny_evaluation() -> Evaluation:
    # popularity listed first: the description puts the model first all the same
    ranking = pd.DataFrame(
        {"auc": [0.55, 0.71, 0.50], "ndcg@3": [0.48, 0.62, 0.40], "map": [0.45, 0.58, 0.39]},
        index=pd.MultiIndex.from_tuples([("popularity", "all"), ("model", "all"), ("random", "all")],
                                        names=["policy", "segment"]),
    )
    off_policy = pd.DataFrame(
        {"value": [0.05, 0.03], "ci_low": [0.04, 0.02], "ci_high": [0.06, 0.04], "n": [150, 150]},
        index=pd.MultiIndex.from_tuples([("model", "dr"), ("popularity", "dr")], names=["policy", "estimator"]),
    )
    comparisons = pd.DataFrame(
        {"difference": [0.02], "ci_low": [0.005], "ci_high": [0.035], "n": [150]},
        index=pd.MultiIndex.from_tuples([("popularity", "dr")], names=["policy", "estimator"]),
    )
    return Evaluation(ranking=ranking, off_policy=off_policy, comparisons=comparisons)
