"""Every setting of ``[training]`` changes the run as docs/training.md says it does.

One small simulated world; each test changes one setting and compares the step it drives (examples,
fit, refit, evaluation, gate) with the defaults. The last test fails when a setting is added without a
test here.
"""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from engine.config import TrainingSettings, load_settings
from engine.contract.load import load_dataset
from engine.features.build import CatalogTable, ProfileTable
from engine.features.spec import FeatureSpec
from engine.model.bundle import load_bundle
from engine.model.examples import build_examples, history_for
from engine.model.split import TEST, TRAIN, VALIDATION
from training.cli import main
from training.evaluate import evaluate, load_truth
from training.gate import Measured, Versus, decide_promotion, resolve_gate_metric
from training.pipeline import fit_ranker, gate_inputs, gate_metric_cannot_judge, refit_on_all, refit_rows

pytestmark = pytest.mark.slow
TESTED: set[str] = set()


def covers(*names: str):
    TESTED.update(names)
    return lambda test: test


@pytest.fixture(scope="module")
def world(small_world):
    return small_world


class Run:
    """The steps of one training run on the world, made on demand and kept."""

    def __init__(self, data, **training) -> None:
        self.settings = load_settings(environ=False).model_copy(
            update={"training": TrainingSettings(**training)})
        self.data = data
        self.dataset = load_dataset(data, self.settings.validation)
        self.spec = FeatureSpec.fit(self.dataset.messages, self.dataset.customers, self.settings.features)
        self.history = history_for(self.dataset.events, self.spec)
        self.catalog = CatalogTable.from_messages(self.dataset.messages, self.spec)
        self.profiles = ProfileTable.from_customers(self.dataset.customers)
        self.examples = build_examples(self.dataset.events, self.history, self.catalog, self.profiles, self.spec,
                                       self.settings, messages=self.dataset.messages)
        self._ranker = self._evaluation = None

    @property
    def ranker(self):
        if self._ranker is None:
            self._ranker = fit_ranker(self.examples, self.spec, self.settings)
        return self._ranker

    @property
    def evaluation(self):
        if self._evaluation is None:
            self._evaluation = evaluate(self.examples, self.ranker, self.history, self.spec, self.settings, self.dataset.events,
                                        self.dataset.messages, self.dataset.customers, load_truth(self.data))
        return self._evaluation

    def counts(self) -> np.ndarray:
        return np.bincount(self.examples.frame["split"], minlength=3)

    def model_text(self) -> str:
        return self.ranker.booster_.model_to_string(num_iteration=self.ranker.best_iteration_)

    @property
    def gate_metric(self):
        t = self.settings.training
        return resolve_gate_metric(t.gate_metric, t.objective, self.evaluation.replayed.replay.has_propensities)

    def gate(self, champion=None):
        t, metric = self.settings.training, self.gate_metric
        candidate, _, popularity = gate_inputs(self.evaluation.metrics(), metric)
        undecidable = gate_metric_cannot_judge(self.evaluation, metric.name)
        return decide_promotion(metric.name, candidate, champion, popularity, tolerance=t.gate_tolerance,
                                min_gain_over_popularity=t.min_gain_over_popularity,
                                objections=[o for o in (undecidable, metric.objection) if o])


@pytest.fixture(scope="module")
def default(world):
    return Run(world)


def _trees(run: Run) -> list[dict]:
    return run.ranker.booster_.dump_model(num_iteration=run.ranker.best_iteration_)["tree_info"]


@covers("attribution_days")
def test_a_shorter_attribution_window_links_fewer_outcomes_and_censors_fewer_impressions(world, default):
    short = Run(world, attribution_days=0.5)
    key = ["customer_id", "ts", "message_id"]
    both = short.examples.frame[key + ["outcome"]].merge(default.examples.frame[key + ["outcome"]], on=key,
                                                          suffixes=("_short", "_default"))
    assert len(both) > 1000
    assert (both["outcome_short"] <= both["outcome_default"]).all()
    assert (both["outcome_short"] < both["outcome_default"]).any()
    assert 0 < sum(short.examples.censored) < sum(default.examples.censored)
    # Every impression of the default run less than 7 days before the end is left out, none before.
    end = default.examples.bounds.end
    kept = default.examples.frame["ts"]
    assert kept.max() + np.timedelta64(7, "D") < end


@covers("target", "relevant_from")
def test_the_target_sets_the_label_the_model_the_metrics_and_the_reward(world, default):
    conversion = Run(world, target="conversion")
    frame = conversion.examples.frame
    assert set(np.unique(frame["grade"])) == {0, 1}
    assert (frame["grade"] == (frame["outcome"] >= 3)).all()
    assert conversion.model_text() != default.model_text()
    assert conversion.evaluation.reward == "conversion" and default.evaluation.reward == "click"
    assert conversion.evaluation.off_policy.loc[("logging", "mean_reward"), "value"] < \
        default.evaluation.off_policy.loc[("logging", "mean_reward"), "value"]
    # relevant_from = 3 on graded labels: the same successes as the conversion target.
    graded = Run(world, relevant_from=3)
    assert (graded.examples.frame["grade"] == graded.examples.frame["outcome"]).all()
    assert graded.evaluation.reward == "conversion"
    assert graded.evaluation.off_policy.loc[("logging", "mean_reward"), "value"] == pytest.approx(
        conversion.evaluation.off_policy.loc[("logging", "mean_reward"), "value"])
    with pytest.raises(ValueError, match="relevant_from = 2 contradicts target = 'conversion'"):
        TrainingSettings(target="conversion", relevant_from=2)


@covers("test_days", "validation_days")
def test_the_split_windows_move_with_their_settings(world, default):
    longer = Run(world, test_days=20, validation_days=5)
    b, d = longer.examples.bounds, default.examples.bounds
    assert b.test_start == b.end - np.timedelta64(20, "D") and d.test_start == d.end - np.timedelta64(14, "D")
    assert b.validation_start == b.test_start - np.timedelta64(5, "D")
    assert longer.counts()[TEST] > default.counts()[TEST]
    assert longer.counts()[TRAIN] < default.counts()[TRAIN]


@covers("group_window_days")
def test_a_shorter_group_window_makes_more_query_groups(world, default):
    short = Run(world, group_window_days=1)
    assert short.examples.frame["group"].nunique() > default.examples.frame["group"].nunique()


@covers("objective")
def test_the_objective_reaches_lightgbm(world, default):
    ranking = Run(world, objective="lambdarank")
    assert ranking.ranker.booster_.params["objective"] == "lambdarank"
    assert default.ranker.booster_.params["objective"] == "binary"
    # No negative sampling for a ranker: the groups stay whole.
    assert (ranking.examples.frame["weight"] == 1).all()


@covers("num_leaves", "min_data_in_leaf")
def test_tree_size_settings_bound_the_trees(world, default):
    small = Run(world, num_leaves=3, min_data_in_leaf=20)
    assert max(t["num_leaves"] for t in _trees(small)) <= 3
    assert max(t["num_leaves"] for t in _trees(default)) > 3
    starved = Run(world, min_data_in_leaf=100_000)
    assert starved.ranker.splits() == 0 and default.ranker.splits() > 0


@covers("learning_rate", "feature_fraction", "bagging_fraction", "lambda_l2")
def test_boosting_settings_reach_lightgbm_and_change_the_model(world, default):
    for name, value in (("learning_rate", 0.2), ("feature_fraction", 0.5), ("bagging_fraction", 0.5), ("lambda_l2", 50.0)):
        run = Run(world, **{name: value})
        assert run.ranker.booster_.params[name] == value
        assert run.model_text() != default.model_text(), name


@covers("max_rounds", "early_stopping_rounds")
def test_round_settings_bound_the_boosting(world, default):
    capped = Run(world, max_rounds=3)
    assert capped.ranker.best_iteration_ <= 3 and capped.ranker.booster_.num_trees() <= 3
    impatient = Run(world, early_stopping_rounds=1, max_rounds=400)
    assert len(impatient.ranker.validation_curve_) == impatient.ranker.best_iteration_ + 1
    assert len(default.ranker.validation_curve_) == default.ranker.best_iteration_ + 30


@covers("negative_sample_rate", "seed")
def test_negative_sampling_keeps_a_seeded_share_of_training_negatives(world, default):
    every = Run(world, negative_sample_rate=1.0)
    train = every.examples.frame["split"] == TRAIN
    negatives = int((every.examples.frame.loc[train, "grade"] < 2).sum())
    kept = default.examples.frame
    kept_negatives = kept.loc[(kept["split"] == TRAIN) & (kept["grade"] < 2)]
    assert 0.4 * negatives < len(kept_negatives) < 0.6 * negatives
    assert (kept_negatives["weight"] == 2.0).all() and (every.examples.frame["weight"] == 1.0).all()
    # The validation and test rows are never sampled.
    assert (every.counts()[VALIDATION:] == default.counts()[VALIDATION:]).all()
    other_seed = Run(world, seed=18)
    assert not other_seed.examples.frame["ts"].equals(default.examples.frame["ts"])


@covers("num_threads")
def test_the_thread_count_reaches_lightgbm_and_leaves_the_model_as_it_is(world, default):
    one = Run(world, num_threads=1)
    assert one.ranker.booster_.params["num_threads"] == 1 and default.ranker.booster_.params["num_threads"] == 2
    trees = lambda run: run.model_text().split("\nparameters:")[0]  # noqa: E731 (the parameters name the threads)
    assert trees(one) == trees(default)


@covers("gate_metric", "min_gain_over_popularity")
def test_the_gate_judges_on_its_metric_and_margin(world, default):
    # auto: the served policy's DR value for the binary objective, with its interval and the paired
    # difference to popularity. (On this small world the interval may be too wide to promote.)
    # (Off-policy estimates of a value may fall below 0 on so few decisions.)
    interval = r"-?0\.\d{4} \[-?0\.\d{4}, -?0\.\d{4}\]"
    assert re.match(rf"(not )?promoted: (first model, )?dr {interval} vs popularity -?0\.\d{{4}} \(difference [+-]0\.\d{{4}} \[",
                    default.gate().reason), default.gate().reason
    assert re.match(rf"(not )?promoted: (first model, )?snips {interval} vs popularity", Run(world, gate_metric="snips").gate().reason)
    assert re.match(r"(not )?promoted: (first model, )?ndcg@3 0\.\d{4} vs popularity", Run(world, gate_metric="ndcg@3").gate().reason)
    assert Run(world, objective="lambdarank").gate_metric.name == "snips"
    with pytest.raises(ValueError, match='gate_metric = "dr" needs probabilities, which the lambdarank objective does not give'):
        TrainingSettings(objective="lambdarank", gate_metric="dr")
    assert "lower bound not above min gain" not in default.gate().reason
    demanding = Run(world, min_gain_over_popularity=1.0)
    assert not demanding.gate().promote and "lower bound not above min gain 1.0000" in demanding.gate().reason


@covers("gate_tolerance")
def test_the_gate_tolerance_lets_a_candidate_fall_that_share_below_the_champion(world, default):
    value = default.evaluation.metrics()["ope.dr"]
    # A champion 3% better than the candidate: beyond the default 2%, within 5%.
    champion = Versus(Measured(value * 1.03), Measured(value - value * 1.03))
    assert "beyond the tolerance of 2%" in default.gate(champion).reason
    assert "tolerance 5%)" in Run(world, gate_tolerance=0.05).gate(champion).reason


@covers("replay_decisions")
def test_replay_decisions_bounds_the_off_policy_sample(world, default):
    few = Run(world, replay_decisions=100)
    assert (few.evaluation.off_policy["n"] == 100).all()
    assert (default.evaluation.off_policy["n"] > 100).all()


@covers("refit_on_all_data")
def test_the_refit_grows_the_chosen_rounds_on_every_example(world, default):
    shipped = refit_on_all(default.examples, default.settings, default.ranker)
    assert shipped.booster_.num_trees() == default.ranker.best_iteration_
    assert shipped.booster_.model_to_string() != default.model_text()
    # The refit has seen the test window: it fits the test rows better than the evaluated model.
    test = default.examples.part(TEST)
    labels = (default.examples.frame["grade"].to_numpy()[test] >= 2).astype(float)
    x = default.examples.features_of(TEST)

    def log_loss(p):
        p = np.clip(p, 1e-9, 1 - 1e-9)
        return float(-np.mean(labels * np.log(p) + (1 - labels) * np.log(1 - p)))

    assert log_loss(shipped.predict(x)) < log_loss(default.ranker.predict(x))


@covers("negative_sample_rate")
def test_the_refit_samples_the_later_negatives_as_training_did(world, default):
    frame = default.examples.frame
    rows = refit_rows(default.examples, default.settings)
    later = frame["split"].to_numpy() > TRAIN
    later_grades, later_negatives = frame["grade"].to_numpy()[later], int((frame["grade"].to_numpy()[later] < 2).sum())
    kept_grades = rows.grades[int((~later).sum()):]
    assert (kept_grades >= 2).sum() == (later_grades >= 2).sum()  # every positive
    assert 0.4 * later_negatives < (kept_grades < 2).sum() < 0.6 * later_negatives
    assert sum(len(b) for b in rows.blocks) == len(rows.grades) == len(rows.weight) == len(rows.groups)
    assert set(rows.weight[int((~later).sum()):][kept_grades < 2]) == {2.0}
    np.testing.assert_array_equal(rows.blocks[0], default.examples.features.values[: int((~later).sum())])
    every = Run(world, negative_sample_rate=1.0)
    assert len(refit_rows(every.examples, every.settings).grades) == len(every.examples.frame)


@covers("use_tuned")
def test_use_tuned_fits_with_the_settings_of_tuned_json(world, tmp_path, capsys):
    model = tmp_path / "model"
    model.mkdir()
    (model / "tuned.json").write_text(json.dumps({
        "params": {"num_leaves": 3, "min_data_in_leaf": 20, "learning_rate": 0.2, "feature_fraction": 0.6, "lambda_l2": 1.5},
        "objective": "binary", "tuned_at": "2026-12-01T00:00:00+00:00", "data_start": "a", "data_end": "b"}))
    config = tmp_path / "nbm.toml"
    args = ["train", "--data", str(world), "--model-dir", str(model), "--tracking-uri", f"sqlite:///{tmp_path / 'm.db'}",
            "--config", str(config)]
    config.write_text("[training]\nuse_tuned = true\n")
    assert main(args) == 0
    out = capsys.readouterr().err
    assert f"using the tuned settings of {model / 'tuned.json'} (tuned 2026-12-01T00:00:00+00:00 on data a to b): num_leaves 3," in out
    tuned = load_bundle(next(model.glob("bundle-*-v1"))).evaluation_booster
    assert max(t["num_leaves"] for t in tuned.dump_model()["tree_info"]) <= 3
    assert "[lambda_l2: 1.5]" in tuned.model_to_string() and "[learning_rate: 0.2]" in tuned.model_to_string()
    config.write_text("")  # use_tuned = false (the default): tuned.json is not read
    assert main(args) == 0
    assert "using the tuned settings" not in capsys.readouterr().err
    configured = load_bundle(next(model.glob("bundle-*-v2"))).evaluation_booster
    assert max(t["num_leaves"] for t in configured.dump_model()["tree_info"]) > 3


def test_every_training_setting_has_a_test_here():
    assert TESTED == set(TrainingSettings.model_fields)
