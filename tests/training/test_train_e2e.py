"""End to end on a tiny simulated world: simulate -> train -> gate -> bundle -> score, serve from the registry."""

from __future__ import annotations

import filecmp
import threading
import time

import mlflow
import pandas as pd
import pytest

from engine.config import Settings, load_settings
from engine.model.bundle import load_bundle
from training.cli import main
from training.commands.score import run_score
from training.commands.serve import AliasFollower, alias_dir, fetch_served_model
from training.tracking import ModelNotFoundError

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e")
    data = root / "data"
    # 1,000 customers: the gate must tell the model from popularity beyond the paired interval of their
    # off-policy values, which on 400 customers' test window (about 1,000 decisions) is too wide.
    assert main(["simulate", "--out", str(data), "--customers", "1000", "--days", "45", "--seed", "5"]) == 0
    return root, data


def _train(root, data, *extra: str, config: str | None = None) -> int:
    args = ["train", "--data", str(data), "--model-dir", str(root / "model"), "--tracking-uri", f"sqlite:///{root / 'mlflow.db'}"]
    if config:
        path = root / "nbm.toml"
        path.write_text(config)
        args += ["--config", str(path)]
    return main(args + list(extra))


@pytest.fixture(scope="module")
def trained(world):
    root, data = world
    assert _train(root, data) == 0
    return root, data


def test_first_model_is_registered_promoted_and_bundled(trained, capsys):
    root, _ = trained
    bundle = load_bundle(root / "model")
    assert bundle.metadata["model_version"] == "1" and bundle.metadata["promoted"] is True
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("nbm-ranker", "champion").version) == "1"
    run = client.get_run(bundle.metadata["run_id"])
    for metric in ("ndcg_at_3", "popularity.ndcg_at_3", "random.ndcg_at_3", "map", "auc", "ope.ips", "ope.snips", "ope.dr",
                   "ope.dr.ci_low", "ope.dr.ci_high", "popularity.ope.dr", "ope.dr.vs.popularity", "ope.dr.vs.popularity.ci_low",
                   "ope.dr.vs.random.ci_high", "gain", "gain.email"):
        assert metric in run.data.metrics, metric
    assert run.data.metrics["ope.dr.vs.popularity.ci_low"] > 0
    assert bundle.metadata["gate"].startswith("promoted: first model, dr ")
    assert run.data.params["config.training.objective"] == "binary"
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "report")}
    assert {"report/feature_importance.png", "report/report.md", "report/ranking_metrics.json", "report/off_policy.json"} <= artifacts
    assert run.data.tags["mlflow.note.content"].startswith("**Gate verdict on dr: the new champion (served).** promoted: first model")
    assert [d.dataset.name for d in run.inputs.dataset_inputs] == ["events"]
    assert client.get_model_version("nbm-ranker", "1").description.startswith(f"nbm ranker trained by run {run.info.run_id}")


def test_same_data_and_config_give_the_same_model(trained, tmp_path):
    root, data = trained
    first = load_bundle(root / "model")
    other = tmp_path / "again"
    assert main(["train", "--data", str(data), "--model-dir", str(other / "model"), "--tracking-uri", f"sqlite:///{other / 'mlflow.db'}"]) == 0
    second = load_bundle(other / "model")
    assert filecmp.cmp(first.path / "model.txt", second.path / "model.txt", shallow=False)
    assert first.metadata["metrics"] == second.metadata["metrics"]


def test_gate_refusal_keeps_the_champion_and_force_promotes(trained, capsys):
    root, data = trained
    champion_path = load_bundle(root / "model").path
    # No model can beat popularity by a whole 1.0 of click rate: the gate must refuse.
    assert _train(root, data, config="[training]\nmin_gain_over_popularity = 1.0\n") == 0
    out = capsys.readouterr().out
    assert "not promoted" in out
    assert load_bundle(root / "model").path == champion_path  # serving keeps the champion
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    assert str(client.get_model_version_by_alias("nbm-ranker", "challenger").version) == "2"
    assert str(client.get_model_version_by_alias("nbm-ranker", "champion").version) == "1"
    assert _train(root, data, "--force-promote", config="[training]\nmin_gain_over_popularity = 1.0\n") == 0
    assert "promoted by --force-promote" in capsys.readouterr().out
    assert str(client.get_model_version_by_alias("nbm-ranker", "champion").version) == "3"
    assert load_bundle(root / "model").metadata["model_version"] == "3"


def test_a_worse_model_is_refused_against_the_champion_on_the_same_replayed_decisions(trained, capsys):
    root, data = trained
    champion_path = load_bundle(root / "model").path
    # One tree with one split: it serves nearly the same message to everyone.
    assert _train(root, data, config="[training]\nnum_leaves = 2\nmax_rounds = 1\n") == 0
    reason = capsys.readouterr().out.strip().splitlines()[-1]
    assert reason.startswith("not promoted: dr ") and " vs champion " in reason and "beyond the tolerance of 2%" in reason
    assert load_bundle(root / "model").path == champion_path


def test_score_respects_channel_validity_and_consent(trained, tmp_path):
    root, data = trained
    events = pd.read_parquet(data / "events.parquet")
    messages = pd.read_parquet(data / "messages.parquet")
    as_of = events["ts"].max() + pd.Timedelta(hours=1)
    out = tmp_path / "scores.csv"
    assert main(["score", "--data", str(data), "--model-dir", str(root / "model"), "--as-of", as_of.isoformat(),
                 "--channel", "email", "--k", "3", "--out", str(out)]) == 0
    rows = pd.read_csv(out)
    scores = rows.dropna(subset=["message_id"])
    catalog = messages.set_index("message_id")
    assert (scores["channel"] == catalog.loc[scores["message_id"], "channel"].to_numpy()).all()
    valid_from = catalog.loc[scores["message_id"], "valid_from"]
    valid_to = catalog.loc[scores["message_id"], "valid_to"]
    assert ((valid_from.isna() | (valid_from <= as_of)) & (valid_to.isna() | (as_of < valid_to))).all()
    assert scores.groupby(["customer_id", "channel"])["rank"].max().max() == 3
    assert (scores.groupby(["customer_id", "channel"])["priority"].apply(lambda s: s.is_monotonic_decreasing)).all()
    unsubscribed = events.loc[(events["event_type"] == "unsubscribe") & (events["channel"] == "email"), "customer_id"].astype(str)
    assert len(unsubscribed) > 0
    served = set(scores["customer_id"].astype(str))
    assert not (set(unsubscribed) & served)
    told = rows.loc[rows["customer_id"].astype(str).isin(unsubscribed)]
    assert told["message_id"].isna().all() and told["suppressed"].str.contains("consent:").all()


def test_score_in_parts_by_several_processes_writes_what_one_part_writes(trained, tmp_path):
    # Customers are split into parts by a hash of their id and each part is decided alone (its own events,
    # profiles and engine), here by two processes: the decisions must be those of one part in one process.
    root, data = trained
    as_of = (pd.read_parquet(data / "events.parquet")["ts"].max() + pd.Timedelta(hours=1)).isoformat()
    args = dict(data=data, model_dir=root / "model", as_of=as_of, channel="all", k=1, customers=None)
    run_score(Settings(), out=tmp_path / "one.parquet", **args)
    run_score(Settings(), out=tmp_path / "parts.parquet", workers=2, rows_per_part=2_000, **args)
    one, parts = (pd.read_parquet(tmp_path / name) for name in ("one.parquet", "parts.parquet"))
    assert parts["decision_id"].nunique() == len(parts) == len(one) > 0
    keys = ["customer_id", "channel", "rank"]
    one, parts = (f.sort_values(keys).reset_index(drop=True) for f in (one, parts))
    pd.testing.assert_frame_equal(parts, one)


def test_score_bad_inputs_exit_2(trained, tmp_path, capsys):
    root, data = trained
    base = ["score", "--data", str(data), "--model-dir", str(root / "model"), "--out", str(tmp_path / "s.csv")]
    assert main(base + ["--as-of", "tomorrow"]) == 2
    assert "--as-of 'tomorrow' is not an ISO-8601 timestamp" in capsys.readouterr().err
    assert main(base + ["--as-of", "2026-07-01T00:00:00Z", "--channel", "fax"]) == 2
    assert "--channel 'fax' has no messages" in capsys.readouterr().err
    assert main(["score", "--data", str(data), "--model-dir", str(tmp_path / "none"), "--as-of", "2026-07-01T00:00:00Z",
                 "--out", str(tmp_path / "s.csv")]) == 2
    assert "no model bundle here" in capsys.readouterr().err
    assert main(base + ["--as-of", "2026-07-01T00:00:00Z", "--explore"]) == 2
    assert "--explore needs an exploring policy" in capsys.readouterr().err
    assert main(base + ["--as-of", "2026-07-01T00:00:00Z", "--channel", "all", "--k", "2"]) == 2
    assert "--k 2 needs one channel" in capsys.readouterr().err


def test_score_refuses_data_with_too_many_rejected_events_and_writes_nothing(trained, tmp_path, capsys):
    root, data = trained
    bad = tmp_path / "data"
    bad.mkdir()
    for name in ("messages.parquet", "customers.parquet"):
        (bad / name).write_bytes((data / name).read_bytes())
    events = pd.read_parquet(data / "events.parquet")
    broken = events.sample(frac=0.05, random_state=1).astype({"event_type": str}).assign(event_type="teleport")
    pd.concat([events.astype({"event_type": str}), broken], ignore_index=True).to_parquet(bad / "events.parquet", index=False)
    out = tmp_path / "s.parquet"
    assert main(["score", "--data", str(bad), "--model-dir", str(root / "model"), "--as-of", "2026-07-01T00:00:00Z",
                 "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "events rejected" in err and "validation.max_reject_share" in err
    assert not out.exists() and not list(tmp_path.glob("s.parquet*"))


def _tracking_uri(root) -> str:
    return f"sqlite:///{root / 'mlflow.db'}"


def test_model_uri_fetches_the_champion_bundle_logged_to_its_run(trained, tmp_path, monkeypatch):
    root, _ = trained
    monkeypatch.setenv("NBM_PATHS__HOME", str(tmp_path / "home"))
    settings = load_settings(None)
    local = load_bundle(root / "model")  # the champion: every promotion above also made its bundle current
    served = fetch_served_model(settings, "models:/nbm-ranker@champion", tracking_uri=_tracking_uri(root))
    assert served.downloaded and served.version.version == int(local.version)
    assert served.model_dir == tmp_path / "home" / "served" / f"nbm-ranker-v{local.version}"
    fetched = load_bundle(served.model_dir)
    assert fetched.path == served.model_dir / f"bundle-{local.metadata['run_id']}"
    assert fetched.version == local.version and fetched.metadata == local.metadata
    assert (fetched.path / "model.txt").read_bytes() == (local.path / "model.txt").read_bytes()
    assert sorted(p.name for p in fetched.path.iterdir()) == sorted(p.name for p in local.path.iterdir())
    assert not [p.name for p in served.model_dir.iterdir() if p.name.startswith(".")]  # no temporary folder left

    again = fetch_served_model(settings, f"models:/nbm-ranker/{local.version}", tracking_uri=_tracking_uri(root))
    assert not again.downloaded and again.model_dir == served.model_dir  # the same version: reused


def test_model_uri_naming_nothing_is_exit_2(trained, tmp_path, monkeypatch, capsys):
    root, _ = trained
    monkeypatch.setenv("NBM_PATHS__HOME", str(tmp_path / "home"))
    uri = _tracking_uri(root)
    with pytest.raises(ModelNotFoundError, match="models:/nbm-ranker@gold: model 'nbm-ranker' has no alias 'gold'; its aliases: "):
        fetch_served_model(load_settings(None), "models:/nbm-ranker@gold", tracking_uri=uri)
    for model_uri, message in [
        ("models:/nbm-ranker@gold", "models:/nbm-ranker@gold: model 'nbm-ranker' has no alias 'gold'; its aliases: "),
        ("models:/nbm-ranker/99", "models:/nbm-ranker/99: model 'nbm-ranker' has no version 99"),
        ("models:/other@champion", f"models:/other@champion: no registered model 'other' in {uri}"),
    ]:
        assert main(["serve", "--model-uri", model_uri, "--tracking-uri", uri]) == 2
        assert capsys.readouterr().err.startswith(f"error: {message}")
    assert not (tmp_path / "home" / "served").exists()


def test_serve_model_uri_runs_the_server_on_the_downloaded_model_dir(trained, tmp_path, monkeypatch, capsys):
    root, _ = trained
    monkeypatch.setenv("NBM_PATHS__HOME", str(tmp_path / "home"))
    calls = []
    monkeypatch.setattr("serving.server.run_server", lambda settings, **options: calls.append(options))
    champion = load_bundle(root / "model").version
    assert main(["serve", "--model-uri", "models:/nbm-ranker@champion", "--tracking-uri", _tracking_uri(root), "--port", "9001"]) == 0
    model_dir = tmp_path / "home" / "served" / f"nbm-ranker-v{champion}"
    assert calls == [{"config": None, "model_dir": model_dir, "host": None, "port": 9001, "workers": None}]
    assert load_bundle(model_dir).version == champion
    assert f"nbm-ranker version {champion} (run " in capsys.readouterr().err


def test_a_followed_alias_serves_the_version_it_names_next(trained, tmp_path, monkeypatch):
    # Last in this module: it registers one more version and moves the champion alias, then puts it back.
    root, data = trained
    monkeypatch.setenv("NBM_PATHS__HOME", str(tmp_path / "home"))
    settings = load_settings(None)
    uri = _tracking_uri(root)
    client = mlflow.MlflowClient(tracking_uri=uri)
    champion = str(client.get_model_version_by_alias("nbm-ranker", "champion").version)
    assert _train(root, data, "--force-promote") == 0
    newest = max(int(v.version) for v in client.search_model_versions("name='nbm-ranker'"))
    client.set_registered_model_alias("nbm-ranker", "champion", champion)
    model_dir = alias_dir(settings, "models:/nbm-ranker@champion")
    assert model_dir == tmp_path / "home" / "served" / "nbm-ranker@champion"
    assert alias_dir(settings, "models:/nbm-ranker/1") is None
    follower = AliasFollower(settings, "models:/nbm-ranker@champion", model_dir, 0.05, tracking_uri=uri)
    try:
        assert follower.check().downloaded
        assert load_bundle(model_dir).version == champion
        assert not follower.check().downloaded  # the alias did not move: nothing to do
        client.set_registered_model_alias("nbm-ranker", "champion", str(newest))
        follower.start()  # the thread notices the move by itself
        deadline = time.monotonic() + 60
        while load_bundle(model_dir).version != str(newest) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert load_bundle(model_dir).version == str(newest)
        follower.stop()
        client.set_registered_model_alias("nbm-ranker", "champion", champion)  # a rollback by the alias
        assert not follower.check().downloaded  # its bundle is still there: made current again
        assert load_bundle(model_dir).version == champion
    finally:
        follower.stop()
        client.set_registered_model_alias("nbm-ranker", "champion", champion)


def test_serve_with_a_poll_interval_follows_the_alias_from_its_own_model_dir(trained, tmp_path, monkeypatch, capsys):
    root, _ = trained
    monkeypatch.setenv("NBM_PATHS__HOME", str(tmp_path / "home"))
    monkeypatch.setenv("NBM_SERVING__RELOAD_POLL_SECONDS", "30")
    seen = []

    def run_server(settings, **options):  # the follower runs while the server does, and stops with it
        seen.append((options["model_dir"], [t.name for t in threading.enumerate()]))

    monkeypatch.setattr("serving.server.run_server", run_server)
    assert main(["serve", "--model-uri", "models:/nbm-ranker@champion", "--tracking-uri", _tracking_uri(root)]) == 0
    ((model_dir, threads),) = seen
    assert model_dir == tmp_path / "home" / "served" / "nbm-ranker@champion"
    assert "nbm-alias-follower" in threads
    assert "nbm-alias-follower" not in [t.name for t in threading.enumerate()]
    assert "the alias is re-read every 30 s" in capsys.readouterr().err
    # A version URI names one version for good: nothing to follow.
    seen.clear()
    assert main(["serve", "--model-uri", "models:/nbm-ranker/1", "--tracking-uri", _tracking_uri(root)]) == 0
    assert seen[0][0] == tmp_path / "home" / "served" / "nbm-ranker-v1" and "nbm-alias-follower" not in seen[0][1]
