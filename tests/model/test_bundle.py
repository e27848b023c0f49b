"""Bundles are published atomically: a crash or a kill mid-write leaves the previous bundle current."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import lightgbm as lgb
import numpy as np
import pandas as pd
import pytest

from engine.config import FeatureSettings
from engine.features.log import EventLog
from engine.features.spec import FeatureSpec
from engine.features.state import FeatureState
from engine.model.bundle import Bundle, BundleError, load_bundle, publish, write_bundle
from tests.builders import events_frame, messages_frame

MESSAGES = messages_frame([{"message_id": "m1", "channel": "email", "topic": "t"}])
CUSTOMERS = pd.DataFrame({"customer_id": ["c1"]})


def _booster(seed: int = 0) -> lgb.Booster:
    rng = np.random.default_rng(seed)
    return lgb.train({"objective": "binary", "verbosity": -1, "num_threads": 1, "min_data_in_leaf": 5},
                     lgb.Dataset(rng.random((60, 2)), label=rng.integers(0, 2, 60)), num_boost_round=2)


def _bundle(model_dir, name: str, version: str, *, make_current: bool = True, evaluation_booster=None,
            metadata: dict | None = None):
    booster = _booster()
    spec = FeatureSpec.fit(MESSAGES, CUSTOMERS, FeatureSettings())
    events = events_frame([{"ts": "2026-01-01T00:00:00Z", "customer_id": "c1", "event_type": "visit"}])
    state = FeatureState.at_cutoff(EventLog.from_events(events, spec.vocab), pd.Timestamp("2026-01-02T00:00:00Z"), 90)
    return write_bundle(model_dir, booster=booster, spec=spec, feature_names=("a", "b"), messages=MESSAGES,
                        customers=CUSTOMERS, state=state, snapshot=pd.DataFrame({"customer_id": ["c1"], "x": [1.0]}),
                        metadata={"model_version": version, **(metadata or {})}, name=name, make_current=make_current,
                        evaluation_booster=evaluation_booster)


def test_write_then_load_round_trip(tmp_path):
    _bundle(tmp_path, "bundle-1", "v1")
    bundle = load_bundle(tmp_path)
    assert bundle.version == "v1"
    assert bundle.feature_names == ("a", "b")
    assert bundle.state.cutoff_ns == pd.Timestamp("2026-01-02T00:00:00Z").value
    assert list(bundle.messages["message_id"]) == ["m1"]
    assert (bundle.path / "model.so").is_file() and bundle.predictor.kind == "lleaves"
    x = np.random.default_rng(2).random((20, 2))
    np.testing.assert_allclose(bundle.predictor.predict(x), bundle.booster.predict(x), rtol=0, atol=1e-12)


def test_a_failed_write_leaves_the_previous_bundle_current(tmp_path):
    _bundle(tmp_path, "bundle-1", "v1")

    def half_then_crash(folder):
        (folder / "model.txt").write_text("half a model")
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        publish(tmp_path, half_then_crash, "bundle-2")
    assert load_bundle(tmp_path).version == "v1"
    assert not (tmp_path / "bundle-2").exists()
    assert not list(tmp_path.glob(".tmp-*"))


def test_a_killed_writer_leaves_the_previous_bundle_current(tmp_path):
    _bundle(tmp_path, "bundle-1", "v1")
    script = textwrap.dedent(f"""
        import time
        from pathlib import Path
        from engine.model.bundle import publish
        def slow(folder):
            (folder / "model.txt").write_text("partial")
            Path({str(tmp_path / 'started')!r}).touch()
            time.sleep(60)
        publish(Path({str(tmp_path)!r}), slow, "bundle-2")
    """)
    writer = subprocess.Popen([sys.executable, "-c", script])
    deadline = time.monotonic() + 30
    while not (tmp_path / "started").exists():
        assert writer.poll() is None and time.monotonic() < deadline, "writer did not start"
        time.sleep(0.05)
    os.kill(writer.pid, signal.SIGKILL)
    writer.wait()
    assert load_bundle(tmp_path).version == "v1"
    # The next publish cleans the dead writer's leftovers and succeeds.
    _bundle(tmp_path, "bundle-3", "v3")
    assert load_bundle(tmp_path).version == "v3"
    assert not list(tmp_path.glob(".tmp-*"))


def test_old_bundles_are_pruned_but_kept_for_rollback(tmp_path):
    for i in range(5):
        _bundle(tmp_path, f"bundle-{i}", f"v{i}")
    assert sorted(p.name for p in tmp_path.glob("bundle-*")) == ["bundle-2", "bundle-3", "bundle-4"]


def test_missing_or_incomplete_bundles_are_clear_errors(tmp_path):
    with pytest.raises(BundleError, match="no model bundle here"):
        load_bundle(tmp_path)
    path = _bundle(tmp_path, "bundle-1", "v1")
    (path / "state.parquet").unlink()
    with pytest.raises(BundleError, match="incomplete bundle, missing state.parquet"):
        load_bundle(tmp_path)


def test_split_features_are_the_matrix_columns_some_tree_splits_on():
    # A name LightGBM rewrites (whitespace) still comes back as the matrix names it; a constant column
    # is never split on.
    rng = np.random.default_rng(0)
    x = rng.random((400, 3))
    x[:, 2] = 1.0
    names = ("topic_home garden_visits_90d", "msg_value", "msg_seen_count")
    booster = lgb.train({"objective": "binary", "verbosity": -1, "num_leaves": 4, "min_data_in_leaf": 5},
                        lgb.Dataset(x, label=(x[:, 0] + 0.3 * x[:, 1] > 0.7).astype(float), feature_name=list(names)),
                        num_boost_round=5)
    assert booster.feature_name()[0] != names[0]  # LightGBM's own name
    bundle = Bundle(path=Path("."), booster=booster, spec=None, feature_names=names, messages=None, customers=None,
                    state=None, snapshot=None, metadata={})
    assert bundle.split_features == {"topic_home garden_visits_90d", "msg_value"}


def test_a_refit_bundle_keeps_its_evaluated_model_and_an_old_one_evaluates_with_its_own(tmp_path):
    evaluated = _booster(seed=5)
    _bundle(tmp_path / "refit", "bundle-1", "v1", evaluation_booster=evaluated)
    refit = load_bundle(tmp_path / "refit")
    x = np.random.default_rng(3).random((10, 2))
    np.testing.assert_array_equal(refit.evaluation_booster.predict(x), evaluated.predict(x))
    assert not np.array_equal(refit.evaluation_booster.predict(x), refit.booster.predict(x))
    _bundle(tmp_path / "plain", "bundle-1", "v1")
    plain = load_bundle(tmp_path / "plain")
    assert plain.evaluation_booster is plain.booster


def test_without_a_current_bundle_the_error_names_the_challenger_and_how_to_score_it(tmp_path):
    _bundle(tmp_path, "bundle-20260101T000000-v1", "v1", make_current=False,
            metadata={"gate": "not promoted: auc 0.600 <= popularity 0.650"})
    newest = _bundle(tmp_path, "bundle-20260102T000000-v2", "v2", make_current=False,
                     metadata={"gate": "not promoted: auc 0.610 <= popularity 0.650"})
    with pytest.raises(BundleError) as caught:
        load_bundle(tmp_path)
    assert str(caught.value) == (
        f"{tmp_path}: no promoted model yet (no 'current'): the newest bundle, bundle-20260102T000000-v2, is a challenger "
        f"(not promoted: auc 0.610 <= popularity 0.650); score it with --bundle {newest}, or promote it with "
        "nbm train --force-promote")
    assert load_bundle(newest).version == "v2"  # what --bundle loads
