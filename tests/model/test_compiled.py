"""The compiled model predicts what LightGBM predicts; without a usable compiled file, it is compiled
again or LightGBM serves."""

from __future__ import annotations

import json
import sys

import lightgbm as lgb
import numpy as np
import pytest

from engine.model.compiled import (
    COMPILED_FILE, TARGET_FILE, BoosterPredictor, compile_into, compile_options, host_target, load_predictor,
)


@pytest.fixture(scope="module")
def booster() -> lgb.Booster:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2_000, 6))
    x[:, 5] = rng.integers(0, 4, len(x))  # a categorical feature, as msg_channel and msg_topic are
    label = (x[:, 0] + (x[:, 5] == 2) + rng.normal(size=len(x)) > 0.5).astype(int)
    data = lgb.Dataset(x, label=label, categorical_feature=[5])
    return lgb.train({"objective": "binary", "num_leaves": 15, "verbosity": -1, "num_threads": 1, "seed": 1}, data, num_boost_round=30)


@pytest.fixture()
def folder(tmp_path, booster):
    booster.save_model(str(tmp_path / "model.txt"))
    return tmp_path


def _rows() -> np.ndarray:
    rng = np.random.default_rng(1)
    x = rng.normal(size=(300, 6)) * 2
    x[:, 5] = rng.integers(-1, 6, len(x))  # unseen and negative categories too
    x[rng.random(x.shape) < 0.1] = np.nan
    return x


def test_the_compiled_model_predicts_what_lightgbm_predicts(folder, booster):
    assert compile_into(folder)
    assert (folder / COMPILED_FILE).stat().st_size > 0
    assert json.loads((folder / TARGET_FILE).read_text()) == host_target({"fblocksize": 30})  # 30 trees: one block
    predictor = load_predictor(folder, booster)
    assert predictor.kind == "lleaves"
    np.testing.assert_allclose(predictor.predict(_rows()), booster.predict(_rows()), rtol=0, atol=1e-12)


def test_a_model_compiled_for_another_cpu_is_compiled_again_not_loaded(folder, booster):
    assert compile_into(folder)
    (folder / TARGET_FILE).write_text(json.dumps({**host_target(), "cpu": "some-other-cpu"}))
    (folder / COMPILED_FILE).write_bytes(b"not machine code for this cpu")  # loading it would crash
    predictor = load_predictor(folder, booster)
    assert predictor.kind == "lleaves"
    np.testing.assert_allclose(predictor.predict(_rows()), booster.predict(_rows()), rtol=0, atol=1e-12)


@pytest.mark.parametrize(("trees", "block"), [(1, 1), (30, 30), (64, 64), (65, 33), (128, 64), (129, 43), (150, 50), (400, 58)])
def test_trees_run_in_the_fewest_equal_blocks_of_at_most_64(trees, block):
    assert compile_options(trees) == {"fblocksize": block}


def test_a_model_compiled_with_other_options_is_compiled_again_not_loaded(folder, booster):
    # A bundle trained before the options were recorded (lleaves' default blocks of 34 trees).
    assert compile_into(folder)
    target = json.loads((folder / TARGET_FILE).read_text())
    (folder / TARGET_FILE).write_text(json.dumps({**target, "options": {}}))
    (folder / COMPILED_FILE).write_bytes(b"not the machine code of these options")  # loading it would crash
    predictor = load_predictor(folder, booster)
    assert predictor.kind == "lleaves"
    np.testing.assert_allclose(predictor.predict(_rows()), booster.predict(_rows()), rtol=0, atol=1e-12)


def test_without_lleaves_lightgbm_serves_and_training_carries_on(folder, booster, monkeypatch):
    monkeypatch.setitem(sys.modules, "lleaves", None)  # import lleaves now raises ImportError
    assert not compile_into(folder)
    assert not (folder / COMPILED_FILE).exists()
    predictor = load_predictor(folder, booster)
    assert isinstance(predictor, BoosterPredictor)
    np.testing.assert_array_equal(predictor.predict(_rows()), booster.predict(_rows()))
