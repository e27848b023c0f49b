"""nbm train --tune: the search runs on the run's split, each trial is a nested MLflow run, the best settings
are fitted and kept in tuned.json; a corrupt tuned.json stops a use_tuned run with exit 2."""

from __future__ import annotations

import json

import mlflow
import pytest

from engine.model.bundle import load_bundle
from tests.training.runs import train_with_config

pytestmark = pytest.mark.slow


# Settings at the edge of the search space, worse on this world than most the search proposes.
POOR = "[training]\nnum_leaves = 4\nmin_data_in_leaf = 500\nlearning_rate = 0.02\n"


def test_tune_logs_a_nested_run_per_trial_fits_the_best_and_keeps_it(small_world, tmp_path, capsys):
    assert train_with_config(tmp_path, small_world, POOR, "--tune", "--tune-trials", "8", "--tune-minutes", "5") == 0
    out = capsys.readouterr().err
    assert "trial 0: binary_logloss " in out and "trial 7: binary_logloss " in out
    tuned = json.loads((tmp_path / "model" / "tuned.json").read_text())
    assert tuned["trials"] == 8 and tuned["objective"] == "binary" and tuned["metric"] == "binary_logloss"
    assert tuned["validation_value"] < tuned["default_validation_value"]
    assert (tuned["params"]["num_leaves"], tuned["params"]["min_data_in_leaf"]) != (4, 500)
    assert set(tuned["params"]) == {"num_leaves", "min_data_in_leaf", "learning_rate", "feature_fraction", "lambda_l2"}
    assert tuned["data_end"].startswith("2026-06-29") and tuned["tuned_at"]

    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    runs = client.search_runs(client.search_experiments()[0].experiment_id)
    (parent,) = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id]
    assert sorted(r.info.run_name for r in children) == sorted(f"tune-trial-{i}" for i in range(8))
    assert all(r.info.status == "FINISHED" and "validation.binary_logloss" in r.data.metrics for r in children)
    assert {r.data.tags["nbm.tuning.pruned"] for r in children} <= {"true", "false"}
    assert sum(r.data.tags["nbm.tuning.pruned"] == "true" for r in children) == tuned["pruned"]
    best = min((r for r in children if r.data.tags["nbm.tuning.pruned"] == "false"),
               key=lambda r: r.data.metrics["validation.binary_logloss"])
    assert int(best.data.params["num_leaves"]) == tuned["params"]["num_leaves"]
    # The parent run's config and the fitted model carry the chosen settings.
    assert int(parent.data.params["config.training.num_leaves"]) == tuned["params"]["num_leaves"]
    assert parent.data.metrics["tuning.trials"] == 8
    booster = load_bundle(tmp_path / "model").evaluation_booster
    assert f"[num_leaves: {tuned['params']['num_leaves']}]" in booster.model_to_string()


def test_a_corrupt_tuned_json_stops_a_use_tuned_run_with_exit_2(small_world, tmp_path, capsys):
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "tuned.json").write_text("{not json")
    assert train_with_config(tmp_path, small_world, "[training]\nuse_tuned = true\n") == 2
    err = capsys.readouterr().err
    assert f"{tmp_path / 'model' / 'tuned.json'}: not a readable tuned-settings file" in err
    (tmp_path / "model" / "tuned.json").write_text(json.dumps({"params": {"num_leaves": 1}, "objective": "binary",
                                                               "tuned_at": "t", "data_start": "a", "data_end": "b"}))
    assert train_with_config(tmp_path, small_world, "[training]\nuse_tuned = true\n") == 2
    assert f"{tmp_path / 'model' / 'tuned.json'}: tuned settings are invalid: num_leaves:" in capsys.readouterr().err


def test_use_tuned_without_a_file_says_so_and_uses_the_configured_settings(small_world, tmp_path, capsys):
    assert train_with_config(tmp_path, small_world, "[training]\nuse_tuned = true\n") == 0
    assert (f"note: use_tuned = true but there is no {tmp_path / 'model' / 'tuned.json'} (run nbm train --tune once): "
            "fitting with the configured settings") in capsys.readouterr().err


def test_tune_options_without_tune_are_refused(small_world, tmp_path, capsys):
    assert train_with_config(tmp_path, small_world, "", "--tune-minutes", "1") == 2
    assert "--tune-minutes and --tune-trials only apply with --tune" in capsys.readouterr().err
