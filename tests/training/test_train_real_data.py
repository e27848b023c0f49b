"""nbm train on data shaped like real data: one message per decision, no propensities, too little data,
a run that is not promoted; and what it prints."""

from __future__ import annotations

import shutil

import mlflow
import pandas as pd
import pytest

from engine.model.bundle import load_bundle
from tests.training.runs import train_with_config
from training.cli import main

pytestmark = pytest.mark.slow


def _report(tmp_path) -> str:
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs(client.search_experiments()[0].experiment_id)[0]
    local = mlflow.artifacts.download_artifacts(run_id=run.info.run_id, artifact_path="report/report.md",
                                                tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    return open(local).read()


def test_a_group_metric_on_one_message_per_decision_refuses_to_judge(small_world, tmp_path, capsys):
    # Every impression its own query group: NDCG@3 is 1.0 for any model.
    assert train_with_config(tmp_path, small_world, "[training]\ngate_metric = \"ndcg@3\"\ngroup_window_days = 0.000001\n") == 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "note: ndcg@3 cannot tell models apart on this test window: none of its" in out
    assert "not promoted: ndcg@3 cannot tell models apart" in out
    assert not (tmp_path / "model" / "current").exists()


def test_data_without_propensities_trains_without_off_policy_estimates(small_world, tmp_path, capsys):
    data = tmp_path / "data"
    shutil.copytree(small_world, data, ignore=shutil.ignore_patterns("ground_truth"))
    events = pd.read_parquet(data / "events.parquet").drop(columns=["propensity"])
    events.to_parquet(data / "events.parquet", index=False)
    assert train_with_config(tmp_path, data) == 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "note: off-policy estimates skipped: the test window's impressions carry no logging propensity" in out
    assert "promoted: first model, auc" in out
    report = _report(tmp_path)
    assert "off-policy estimates skipped" in report
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")
    run = client.search_runs(client.search_experiments()[0].experiment_id)[0]
    assert "report/off_policy.json" not in {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    description = run.data.tags["mlflow.note.content"]
    assert "**Gate verdict on auc:" in description and "- off-policy estimates skipped" in description
    assert "**Off-policy value**" not in description


def test_a_model_that_cannot_split_is_refused_and_the_setting_named(small_world, tmp_path, capsys):
    assert train_with_config(tmp_path, small_world, "[training]\nmin_data_in_leaf = 100000\n") == 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "warning: the model is constant (no tree made a split on" in out
    assert "not promoted: the model is constant" in out and "min_data_in_leaf = 100000" in out


def test_after_a_refusal_score_names_the_challenger_and_scores_it_with_bundle(small_world, tmp_path, capsys):
    assert train_with_config(tmp_path, small_world, "[training]\nmin_gain_over_popularity = 1.0\n") == 0
    bundle = next((tmp_path / "model").glob("bundle-*"))
    capsys.readouterr()
    args = ["score", "--data", str(small_world), "--as-of", "2026-06-30T00:00:00Z", "--out", str(tmp_path / "s.csv")]
    assert main([*args, "--model-dir", str(tmp_path / "model")]) == 2
    err = capsys.readouterr().err
    assert f"the newest bundle, {bundle.name}, is a challenger (not promoted: dr" in err
    assert f"score it with --bundle {bundle}" in err
    assert main([*args, "--bundle", str(bundle)]) == 0
    assert len(pd.read_csv(tmp_path / "s.csv")) > 0
    assert main([*args, "--bundle", str(tmp_path)]) == 2
    assert "not a model bundle (no metadata.json)" in capsys.readouterr().err


def test_the_run_says_what_it_left_out_which_data_each_figure_comes_from_and_the_reward(small_world, tmp_path, capsys):
    assert train_with_config(tmp_path, small_world, "[training]\ntarget = \"conversion\"\n") == 0
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "warning: " in out and "impressions left out of training and evaluation because their attribution window" in out
    assert "000000001" not in out  # the data's exclusive end is never printed
    bundle = load_bundle(next((tmp_path / "model").glob("bundle-*")))  # few conversions: maybe not promoted
    assert bundle.metadata["refit_on_all_data"] is True and (bundle.path / "evaluation_model.txt").is_file()
    report = _report(tmp_path)
    assert "Off-policy value of what each policy would serve at replayed logged decisions (conversion rate, 95% CI)" in report
    assert "The shipped model was refit on train + validation + test" in report
    assert "- customers_in_table: 400" in report and "- customers_with_events: " in report
    assert "000000001" not in report
