"""The MLflow layer against a real local store: one sqlite file and artifact root under a temporary directory.

Opening a new sqlite store runs MLflow's migrations (seconds), so the module shares one store; tests that
touch the registry use their own registered-model name so that they do not depend on each other's order.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import lightgbm as lgb
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import mlflow  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from mlflow.exceptions import MlflowException  # noqa: E402

from training.gate import GateDecision  # noqa: E402
from training.tracking import (  # noqa: E402
    PARAM_VALUE_MAX_CHARS,
    ModelNotFoundError,
    ModelNotRegisteredError,
    RetryPolicy,
    Tracker,
    TrackingUnavailableError,
    flatten_params,
    mlflow_name,
    parse_model_uri,
)

# Third-party deprecations MLflow 3.17 triggers: comparing DataFrame columns with a range when it saves an
# input example (pandas 3), and a SQLAlchemy loader strategy in its sqlite store.
pytestmark = [
    pytest.mark.filterwarnings("ignore:Operation with range is deprecated:DeprecationWarning"),
    pytest.mark.filterwarnings("ignore:The ``noload`` loader strategy is deprecated"),
]

PROMOTE = GateDecision(True, "promoted: first model, ndcg@3 0.412 > popularity 0.301")
KEEP = GateDecision(False, "not promoted: ndcg@3 0.380 < champion 0.412")


@dataclass(frozen=True)
class Store:
    directory: Path
    uri: str
    tracker: Tracker
    client: mlflow.MlflowClient


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Iterator[Store]:
    directory = tmp_path_factory.mktemp("tracking") / "store"  # not created yet: the tracker makes it
    uri = f"sqlite:///{directory}/mlflow.db"
    with pytest.MonkeyPatch.context() as env:
        # Tracker.run points MLflow's process-global URIs (and their environment variables) at the store.
        for name in ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI", "MLFLOW_HTTP_REQUEST_MAX_RETRIES"):
            env.delenv(name, raising=False)
        tracker = Tracker(uri)
        tracker.champion()  # opens (and migrates) the store once for the module
        yield Store(directory, uri, tracker, mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri))
        mlflow.set_tracking_uri(None)
        mlflow.set_registry_uri(None)


@pytest.fixture(scope="module")
def features() -> pd.DataFrame:
    rng = np.random.default_rng(7)
    return pd.DataFrame(rng.normal(size=(40, 3)), columns=["recency_days", "topic_affinity", "sends_7d"])


@pytest.fixture(scope="module")
def booster(features) -> lgb.Booster:
    labels = (features["topic_affinity"] > 0).astype(int)
    params = {"objective": "binary", "verbose": -1, "min_data_in_leaf": 2, "seed": 7}
    return lgb.train(params, lgb.Dataset(features, labels), num_boost_round=5)


def test_param_flattening_and_visible_truncation():
    flat = flatten_params({"model": {"learning_rate": 0.05, "leaves": [15, 31]}, "seed": 7, "note": None})
    assert flat == {"model.learning_rate": "0.05", "model.leaves": "[15, 31]", "seed": "7", "note": "None"}
    long_value = flatten_params({"features": "x" * 10_000})["features"]
    assert len(long_value) == PARAM_VALUE_MAX_CHARS
    assert long_value.endswith("...[truncated 10000 chars]")


def test_metric_names_mlflow_refuses_are_mapped():
    assert mlflow_name("ndcg@3") == "ndcg_at_3"
    assert mlflow_name("eval/hit rate-at.5") == "eval/hit rate-at.5"
    assert mlflow_name("lift:email(%)") == "lift_email___"


def test_run_records_params_metrics_tags_and_artifacts(store, tmp_path, caplog):
    extra_file = tmp_path / "notes.md"
    extra_file.write_text("# notes\n")
    figure, axes = plt.subplots()
    axes.plot([0, 1], [0, 1])
    with caplog.at_level(logging.WARNING, logger="training.tracking"), store.tracker.run("artifacts") as run:
        run.log_params({"model": {"learning_rate": 0.05, "num_leaves": 31}, "seed": 7})
        run.log_metrics({"ndcg@3": 0.41, "coverage": 0.9})
        run.log_metrics({"ndcg@3": 0.43}, step=1)
        run.log_metrics({"uplift": math.nan})
        run.set_tags({"nbm.data_hash": "abc123"})
        run.log_dict({"features": ["recency_days"]}, "config/features.json")
        run.log_text("all good", "report/summary.txt")
        run.log_figure(figure, "report/lift.png")
        run.log_table(pd.DataFrame({"segment": ["a", "b"], "ndcg@3": [0.4, 0.5]}), "eval/by_segment.json")
        run.log_artifact(extra_file, artifact_path="docs")
    plt.close(figure)

    recorded = store.client.get_run(run.run_id)
    assert recorded.info.status == "FINISHED"
    assert recorded.info.run_name == "artifacts"
    assert recorded.data.params == {"model.learning_rate": "0.05", "model.num_leaves": "31", "seed": "7"}
    assert recorded.data.metrics["ndcg_at_3"] == 0.43  # the latest step
    assert recorded.data.metrics["coverage"] == 0.9
    assert math.isnan(recorded.data.metrics["uplift"])  # MLflow stores NaN; it is logged, with a warning
    assert "metric uplift is NaN" in caplog.text
    assert [m.step for m in store.client.get_metric_history(run.run_id, "ndcg_at_3")] == [0, 1]
    assert recorded.data.tags["nbm.data_hash"] == "abc123"
    assert not [tag for tag in recorded.data.tags if tag.startswith("nbm.metric_name.")]  # the rule is documented once

    def listed(path: str | None = None) -> set[str]:
        return {entry.path for entry in store.client.list_artifacts(run.run_id, path)}

    assert listed() == {"config", "report", "eval", "docs"}
    assert listed("report") == {"report/summary.txt", "report/lift.png"}
    table = store.client.load_table(recorded.info.experiment_id, "eval/by_segment.json", run_ids=[run.run_id])
    assert table.drop(columns=["run_id", "run_uuid"], errors="ignore").to_dict("list") == {"segment": ["a", "b"], "ndcg@3": [0.4, 0.5]}
    assert listed("docs") == {"docs/notes.md"}


def test_metric_names_colliding_after_mapping_are_refused(store):
    with pytest.raises(ValueError, match="metrics 'ndcg@3' and 'ndcg_at_3' both map to MLflow key 'ndcg_at_3'"):
        with store.tracker.run("collision") as run:
            run.log_metrics({"ndcg@3": 0.4, "ndcg_at_3": 0.5})


def test_missing_artifact_is_a_file_error_not_an_unreachable_store(store, tmp_path):
    with pytest.raises(FileNotFoundError, match="artifact to log does not exist"):
        with store.tracker.run("missing artifact") as run:
            run.log_artifact(tmp_path / "nope.csv")


def test_failing_run_ends_failed_and_reraises(store):
    with pytest.raises(RuntimeError, match="boom"):
        with store.tracker.run("fails") as run:
            run.log_metrics({"ndcg@3": 0.1})
            raise RuntimeError("boom")
    assert store.client.get_run(run.run_id).info.status == "FAILED"
    assert mlflow.active_run() is None
    with store.tracker.run("after the failure") as next_run:  # MLflow's active-run stack was left clean
        pass
    assert store.client.get_run(next_run.run_id).info.status == "FINISHED"


@pytest.mark.slow
def test_each_model_is_a_new_version_with_a_signature(store, booster, features):
    versions = []
    for attempt in range(2):
        with store.tracker.run(f"train {attempt}") as run:
            versions.append(run.log_lightgbm_model(booster, features.head(5)))
    assert [(v.name, v.version) for v in versions] == [("nbm-ranker", 1), ("nbm-ranker", 2)]
    assert versions[1].run_id == run.run_id
    assert versions[1].model_uri == "models:/nbm-ranker/2"
    assert store.client.get_model_version("nbm-ranker", "2").run_id == run.run_id

    info = mlflow.models.get_model_info(versions[1].model_uri)
    assert info.signature is not None
    assert info.signature.inputs.input_names() == ["recency_days", "topic_affinity", "sends_7d"]
    assert info.signature.outputs is not None
    loaded = mlflow.lightgbm.load_model(versions[1].model_uri)
    np.testing.assert_allclose(loaded.predict(features), booster.predict(features))


@pytest.mark.slow
def test_gate_decisions_move_champion_and_challenger_aliases(store, booster, features):
    name = "gate-ranker"
    assert store.tracker.champion(name) is None  # no such registered model
    with store.tracker.run("first") as first_run:
        first_run.log_metrics({"ndcg@3": 0.412})
        first = first_run.log_lightgbm_model(booster, features.head(5), registered_name=name)
    assert store.tracker.champion(name) is None  # registered, but no alias yet

    assert store.tracker.promote(name, first.version, PROMOTE) == "champion"
    champion = store.tracker.champion(name)
    assert champion is not None
    assert (champion.version, champion.run_id) == (1, first_run.run_id)
    assert champion.metrics == {"ndcg@3": 0.412}  # under the name it was logged with, not "ndcg_at_3"
    assert champion.model_uri == f"models:/{name}/1"

    with store.tracker.run("second") as second_run:
        second_run.log_metrics({"ndcg@3": 0.380})
        second = second_run.log_lightgbm_model(booster, features.head(5), registered_name=name)
    assert store.tracker.promote(name, second.version, KEEP) == "challenger"
    assert store.tracker.champion(name).version == 1
    aliases = store.client.get_registered_model(name).aliases  # versions are ints from sqlite, strings over REST
    assert {alias: str(version) for alias, version in aliases.items()} == {"champion": "1", "challenger": "2"}
    assert store.client.get_model_version(name, "1").tags["nbm.gate"] == PROMOTE.reason
    assert store.client.get_model_version(name, "2").tags["nbm.gate"] == KEEP.reason


def test_model_uris_resolve_to_the_version_and_its_bundle_logged_after_the_run(store, booster, features, tmp_path):
    name = "bundled-ranker"
    bundle = tmp_path / "bundle-1"
    bundle.mkdir()
    (bundle / "model.txt").write_text("tree\n")
    (bundle / "metadata.json").write_text("{}")
    with store.tracker.run("bundled") as run:
        version = run.log_lightgbm_model(booster, features.head(5), registered_name=name)
    run.log_bundle(bundle)  # the run has ended: the bundle is written after tracking
    store.tracker.promote(name, version.version, PROMOTE)
    assert parse_model_uri(f"models:/{name}@champion") == (name, "champion", None)
    assert parse_model_uri(f"models:/{name}/1") == (name, None, 1)
    for uri in (f"models:/{name}@champion", f"models:/{name}/1"):
        assert store.tracker.model_version(uri) == version
    target = tmp_path / "downloaded"
    target.mkdir()
    store.tracker.download_bundle(version, target)
    assert sorted(p.name for p in target.iterdir()) == ["metadata.json", "model.txt"]
    assert (target / "model.txt").read_text() == "tree\n"


def test_a_version_whose_run_logged_no_bundle_is_not_found(store, booster, features, tmp_path):
    with store.tracker.run("no bundle") as run:
        version = run.log_lightgbm_model(booster, features.head(5), registered_name="bundleless-ranker")
    with pytest.raises(ModelNotFoundError) as raised:
        store.tracker.download_bundle(store.tracker.model_version("models:/bundleless-ranker/1"), tmp_path)
    assert str(raised.value) == (f"models:/bundleless-ranker/1: run {run.run_id} holds no bundle/ artifacts (trained before "
                                 "nbm train logged its bundle to MLflow?); retrain, or serve its local bundle with --model-dir")
    assert version.version == 1 and list(tmp_path.iterdir()) == []


def test_refused_registry_calls_are_not_retried(store, caplog):
    with caplog.at_level(logging.WARNING, logger="training.tracking"):
        with pytest.raises(MlflowException) as raised:
            store.tracker.set_alias("no-such-model", "champion", 1)
    assert not isinstance(raised.value, TrackingUnavailableError)
    assert "retrying" not in caplog.text


@pytest.mark.slow
def test_failed_registration_says_the_model_was_logged_but_not_registered(store, booster, features, monkeypatch):
    def refuse_connection(*args, **kwargs):
        raise ConnectionRefusedError("registry down")

    monkeypatch.setattr(mlflow.MlflowClient, "create_model_version", refuse_connection)
    fast = Tracker(store.uri, retry=RetryPolicy(attempts=2, initial_wait_seconds=0.01, max_wait_seconds=0.01))
    with pytest.raises(ModelNotRegisteredError) as raised:
        with fast.run("registry down") as run:
            run.log_lightgbm_model(booster, features.head(5), registered_name="orphan-ranker")
    error = raised.value
    assert error.run_id == run.run_id
    assert error.model_uri.startswith("models:/m-")
    expected_start = f"model logged as {error.model_uri} in run {run.run_id} but not registered as 'orphan-ranker'"
    assert str(error).startswith(expected_start)
    assert "registry down" in str(error)
    assert store.client.search_model_versions("name='orphan-ranker'") == []
    assert store.client.get_run(run.run_id).info.status == "FAILED"


@pytest.mark.slow
def test_nothing_is_written_outside_the_store_directory(store, booster, features, tmp_path, monkeypatch):
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)  # MLflow's default artifact root would be ./mlruns here
    with store.tracker.run("placement") as run:
        run.log_text("x", "x.txt")
        run.log_lightgbm_model(booster, features.head(5), registered_name="placement-ranker")
    assert list(workdir.iterdir()) == []
    artifact_uri = store.client.get_run(run.run_id).info.artifact_uri
    assert artifact_uri.startswith((store.directory / "artifacts").as_uri())
    assert sorted(p.name for p in store.directory.iterdir()) == ["artifacts", "mlflow.db"]


def test_unreachable_store_fails_fast_with_the_uri(monkeypatch, caplog):
    monkeypatch.delenv("MLFLOW_HTTP_REQUEST_MAX_RETRIES", raising=False)  # restored after the test
    uri = "http://127.0.0.1:9"
    tracker = Tracker(uri, retry=RetryPolicy(attempts=2, initial_wait_seconds=0.01, max_wait_seconds=0.01))
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="training.tracking"):
        with pytest.raises(TrackingUnavailableError) as raised:
            tracker.champion()
    assert time.monotonic() - started < 5
    message = str(raised.value)
    assert message.startswith(
        f"MLflow tracking store {uri} is unavailable: reading registered model nbm-ranker failed 2 time(s)"
    )
    assert "Connection refused" in message
    assert raised.value.tracking_uri == uri
    assert caplog.text.count("retrying") == 1  # one retry between the two attempts
    with pytest.raises(TrackingUnavailableError, match="finding experiment 'nbm' failed 2 time"):
        with tracker.run("never starts"):
            pass
