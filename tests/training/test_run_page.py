"""What a reviewer finds in MLflow after a run, read back through the MLflow client of a local sqlite store:
the description, the tables, the figures, the input data set, the experiment's type and the registry's words."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402

from tests.training.reported import DATA_STATS, DECISION, SPLIT, tiny_evaluation  # noqa: E402
from training.gate import GateDecision  # noqa: E402
from training.report import MODEL_DESCRIPTION, report_tables, run_description, version_description  # noqa: E402
from training.tracking import Tracker  # noqa: E402

pytestmark = [
    pytest.mark.filterwarnings("ignore:Operation with range is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]


@pytest.fixture
def store(tmp_path, monkeypatch):
    for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI"):
        monkeypatch.delenv(name, raising=False)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    yield uri, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
    mlflow.set_tracking_uri(None)
    mlflow.set_registry_uri(None)


def test_the_description_summarises_data_split_baselines_off_policy_values_and_the_verdict():
    text = run_description(tiny_evaluation(), data_stats=DATA_STATS, split=SPLIT, gate_metric="dr", decision=DECISION,
                           figure_urls={"lift": "get-artifact?path=report%2Flift.png&run_uuid=abc"})
    assert text.startswith(f"**Gate verdict on dr: the new champion (served).** {DECISION.reason}\n")
    assert ("**Data:** 1,234 events of 56 customers on 7 messages, 2026-01-01 00:00 UTC to 2026-01-31 23:30 UTC; "
            "890 impressions, 2 rows rejected.") in text
    assert ("**Split by time:** train 600 impressions before 2026-01-20 00:00 UTC, validation 140, test 150 from "
            "2026-01-25 00:00 UTC to 2026-01-31 23:30 UTC.") in text
    # the model first, whatever the evaluation's order
    assert ("| policy | auc | ndcg@3 | map |\n| --- | --- | --- | --- |\n| model | 0.7100 | 0.6200 | 0.5800 |\n"
            "| popularity | 0.5500 | 0.4800 | 0.4500 |\n| random | 0.5000 | 0.4000 | 0.3900 |") in text
    assert "| model | 0.0500 [0.0400, 0.0600] |\n| popularity | 0.0300 [0.0200, 0.0400] |" in text
    assert "| popularity | 0.0200 [0.0050, 0.0350] |" in text
    assert "![lift](get-artifact?path=report%2Flift.png&run_uuid=abc)" in text
    refused = GateDecision(False, "not promoted: dr 0.0300 < champion 0.0500")
    kept = run_description(tiny_evaluation(), data_stats=DATA_STATS, split=SPLIT, gate_metric="dr", decision=refused,
                           figure_urls={})
    assert kept.startswith("**Gate verdict on dr: kept as challenger (not served).** not promoted: dr 0.0300")


def test_a_run_shows_its_summary_tables_figure_and_data_set_without_name_mapping_tags(store, tmp_path):
    uri, client = store
    events = pd.DataFrame({"ts": pd.to_datetime(["2026-01-01T00:00Z", "2026-01-02T00:00Z", "2026-01-03T00:00Z"]),
                           "customer_id": ["a", "b", "a"], "event_type": ["send", "send", "click"]})
    data = tmp_path / "data"
    data.mkdir()
    figure, axis = plt.subplots()
    axis.plot([0, 1], [0, 1])
    tracker = Tracker(uri, description="model training for tests")
    with tracker.run("reviewed") as run:
        run.log_metrics({"ndcg@3": 0.5})
        run.log_dataset(events, source=data, name="events")
        run.log_figure(figure, "report/lift.png")
        for name, table in report_tables(tiny_evaluation()).items():
            run.log_table(table, f"report/{name}")
        run.describe("**Gate verdict on dr: the new champion (served).**")
    plt.close(figure)

    recorded = client.get_run(run.run_id)
    assert recorded.data.tags["mlflow.note.content"] == "**Gate verdict on dr: the new champion (served).**"
    assert not [tag for tag in recorded.data.tags if tag.startswith("nbm.metric_name.")]
    assert recorded.data.metrics == {"ndcg_at_3": 0.5}
    assert {a.path for a in client.list_artifacts(run.run_id, "report")} == {
        "report/lift.png", "report/ranking_metrics.json", "report/off_policy.json", "report/off_policy_differences.json"}
    off_policy = client.load_table(recorded.info.experiment_id, "report/off_policy.json", run_ids=[run.run_id])
    assert off_policy.drop(columns=["run_id", "run_uuid"], errors="ignore").to_dict("list") == {
        "policy": ["model", "popularity"], "estimator": ["dr", "dr"], "value": [0.05, 0.03], "ci_low": [0.04, 0.02],
        "ci_high": [0.06, 0.04], "n": [150, 150]}
    [logged] = recorded.inputs.dataset_inputs
    assert logged.dataset.name == "events"
    assert logged.dataset.source_type == "local"
    assert str(data.resolve()) in logged.dataset.source
    assert '"num_rows": 3' in logged.dataset.profile
    assert logged.dataset.digest
    assert {(t.key, t.value) for t in logged.tags} == {("mlflow.data.context", "training")}

    experiment = client.get_experiment(recorded.info.experiment_id)
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.tags["mlflow.note.content"] == "model training for tests"


def test_an_experiment_a_person_described_keeps_its_description(store):
    uri, client = store
    experiment_id = client.create_experiment("nbm")
    client.set_experiment_tag(experiment_id, "mlflow.note.content", "ours, hands off")
    with Tracker(uri, description="nbm's words").run("first"):
        pass
    tags = client.get_experiment(experiment_id).tags
    assert tags["mlflow.note.content"] == "ours, hands off"
    assert tags["mlflow.experimentKind"] == "custom_model_development"


@pytest.mark.slow
def test_the_registered_model_and_each_version_are_described(store):
    import lightgbm as lgb
    import numpy as np

    uri, client = store
    features = pd.DataFrame(np.random.default_rng(3).normal(size=(30, 2)), columns=["recency_days", "sends_7d"])
    booster = lgb.train({"objective": "binary", "verbose": -1, "min_data_in_leaf": 2, "seed": 3},
                        lgb.Dataset(features, (features["sends_7d"] > 0).astype(int)), num_boost_round=3)
    tracker = Tracker(uri)
    refused = GateDecision(False, "not promoted: dr 0.0300 < champion 0.0500")
    runs = []
    for decision in (DECISION, refused):
        with tracker.run("registered") as run:
            run.log_lightgbm_model(booster, features.head(3), registered_name="described", model_description=MODEL_DESCRIPTION,
                                   version_description=version_description(run.run_id, decision))
        runs.append(run.run_id)
    assert client.get_registered_model("described").description == MODEL_DESCRIPTION
    assert client.get_model_version("described", "1").description == (
        f"nbm ranker trained by run {runs[0]} (its description has the evaluation). Gate: promoted (champion): "
        f"{DECISION.reason}")
    assert client.get_model_version("described", "2").description == (
        f"nbm ranker trained by run {runs[1]} (its description has the evaluation). Gate: not promoted (challenger): "
        f"{refused.reason}")
