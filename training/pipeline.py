"""The nightly training run as a chain of named steps (each timed, each with a progress line).

validate -> examples -> fit -> evaluate -> snapshot -> champion -> track -> bundle -> promote
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
import pandas as pd

from engine.config import Settings
from engine.contract.load import Dataset, load_dataset
from engine.contract.report import check_reject_share
from engine.features.build import CatalogTable, ProfileTable, build_features
from engine.features.spec import FeatureSpec
from engine.features.state import FeatureState
from engine.memory import release_freed_memory
from engine.model.bundle import BundleError, load_bundle, set_current, write_bundle
from engine.model.examples import Examples, build_examples, categorical_features, data_end, history_for
from engine.model.metrics import ranking_report
from engine.model.ranker import Ranker
from engine.model.sampling import sample_negatives
from engine.model.split import TEST, TRAIN, VALIDATION
from engine.model.tuning import TuningResult, validation_metric
from engine.errors import ModelMismatchError
from engine.simulate import GroundTruth
from training.evaluate import CHAMPION, MODEL, POPULARITY, Evaluation, evaluate, load_truth, replay_champion, with_policies
from training.gate import (GateDecision, GateMetric, Measured, Versus, decide_promotion, metric_cannot_judge, model_cannot_split,
                           resolve_gate_metric)
from training.progress import Advance, Progress
from training.report import (EXPERIMENT_DESCRIPTION, FIGURES, MODEL_DESCRIPTION, markdown_report, report_figures, report_tables,
                             run_description, version_description)
from training.tracking import BUNDLE_ARTIFACT_PATH, Tracker
from training.tuning import (TUNED_FILE, Tuned, TuneRequest, describe, read_tuned, run_search, trial_line,
                             with_params, write_tuned)

MODEL_NAME = "nbm-ranker"
NO_CHAMPION = "no champion bundle yet"


@dataclass(frozen=True)
class TrainOutcome:
    model_version: int
    run_id: str
    bundle: Path
    decision: GateDecision
    metrics: dict[str, float]
    gate_metric: GateMetric


def train(settings: Settings, *, data_dir: Path, model_dir: Path, tracking_uri: str, force_promote: bool,
          now: datetime, progress: Progress, tune: TuneRequest | None = None) -> TrainOutcome:
    """``tune``: search the LightGBM settings first (training/tuning.py) and fit with the best; without it,
    ``[training] use_tuned`` fits with those of the last search, kept in ``<model_dir>/tuned.json``."""
    # Read before the long steps: a corrupt file stops the run at once.
    reused = read_tuned(model_dir) if tune is None and settings.training.use_tuned else None
    t = settings.training
    with progress.step("validate") as info:
        dataset = load_dataset(data_dir, settings.validation)
        check_reject_share(dataset.report)
        info["detail"] = f"{len(dataset.events):,} events, {len(dataset.messages)} messages, {len(dataset.report.rejects):,} rejected rows"

    with progress.step("examples") as info:
        spec = FeatureSpec.fit(dataset.messages, dataset.customers, settings.features)
        history = history_for(dataset.events, spec)
        catalog, profiles = CatalogTable.from_messages(dataset.messages, spec), ProfileTable.from_customers(dataset.customers)
        with progress.bar("feature rows") as advance:
            examples = build_examples(dataset.events, history, catalog, profiles, spec, settings, messages=dataset.messages,
                                      on_rows=advance)
        counts = np.bincount(examples.frame["split"], minlength=3)
        info["detail"] = (f"{len(examples.frame):,} impressions x {len(examples.features.names)} features "
                          f"(train {counts[TRAIN]:,}, validation {counts[VALIDATION]:,}, test {counts[TEST]:,})")
    if sum(examples.censored):
        progress.say(f"warning: {censored_note(examples)}")

    tuning = None
    if tune is not None:
        with progress.step("tune") as info:
            base = make_ranker(spec, settings, examples.features.names)
            tuning = run_search(examples, base, settings, tune, on_trial=lambda r: progress.say(trial_line(r, validation_metric(base.objective)[0])))
            settings = with_params(settings, tuning.best_params, source="the search")
            tuned_path = write_tuned(model_dir, tuning, settings, now=now, data_start=dataset.events["ts"].min().isoformat(),
                                     data_end=last_event(dataset.events))
            info["detail"] = (f"{len(tuning.trials)} trials ({sum(r.pruned for r in tuning.trials)} pruned"
                              + ("; the time budget ended the search" if tuning.budget_exhausted else "")
                              + f"), validation {tuning.metric} {tuning.best_value:.5f} vs {tuning.default_value:.5f} with the "
                              f"configured settings; fitting with {describe(tuning.best_params)}; saved to {tuned_path}")
    elif t.use_tuned:
        settings = _reuse_tuned(settings, reused, model_dir, progress)
    t = settings.training

    with progress.step("fit") as info:
        with progress.bar("boosting rounds (early stopping may end sooner)") as advance:
            ranker = fit_ranker(examples, spec, settings, on_round=advance)
        shipped = ranker
        if t.refit_on_all_data:
            with progress.bar(f"refit on all data ({ranker.best_iteration_} rounds)") as advance:
                shipped = refit_on_all(examples, settings, ranker, on_round=advance)
        # From here on only the test rows of the matrix are read: free the training and validation rows.
        examples = examples.keep_features_of(TEST)
        release_freed_memory()
        info["detail"] = (f"{t.objective}, best iteration {ranker.best_iteration_} of at most {t.max_rounds}"
                          + ("; shipped model refit on the labelled impressions of every split (train, validation and test)"
                             if shipped is not ranker else ""))
    constant = model_cannot_split(ranker.splits(), examples.part(TRAIN).stop, t.min_data_in_leaf)
    if constant:
        progress.say(f"warning: {constant}")

    with progress.step("evaluate") as info:
        truth = load_truth(data_dir)
        evaluation = evaluate(examples, ranker, history, spec, settings, dataset.events, dataset.messages, dataset.customers, truth)
        gate_metric = resolve_gate_metric(t.gate_metric, t.objective, evaluation.replayed.replay.has_propensities)
        metrics = evaluation.metrics()
        info["detail"] = ", ".join(f"{k} {metrics[k]:.4f}" for k in (gate_metric.key, f"popularity.{gate_metric.key}", "gain") if k in metrics)
    undecidable = gate_metric_cannot_judge(evaluation, gate_metric.name)
    for note in (*evaluation.notes, gate_metric.note, undecidable):
        if note:
            progress.say(f"note: {note}")

    with progress.step("snapshot") as info:
        end = data_end(dataset.events)
        state = FeatureState.at_cutoff(history.log, end, settings.features.max_window_days)
        with progress.bar("customers") as advance:
            snapshot = _customer_snapshot(dataset, history, catalog, profiles, spec, end, on_rows=advance)
        info["detail"] = f"{len(snapshot):,} customers, events up to {last_event(dataset.events)}, state {len(state.log):,} records"

    with progress.step("champion") as info:
        evaluation, champion_ranking, champion_note = _champion_on_this_window(model_dir, examples, evaluation, dataset, settings, truth)
        metrics = {**evaluation.metrics(), **champion_ranking}
        decision = decide_promotion(gate_metric.name, *gate_inputs(metrics, gate_metric), tolerance=t.gate_tolerance,
                                    min_gain_over_popularity=t.min_gain_over_popularity, force=force_promote,
                                    objections=[o for o in (constant, undecidable, gate_metric.objection) if o],
                                    without_champion="first model" if champion_note == NO_CHAMPION else champion_note)
        info["detail"] = decision.reason + (f" ({champion_note})" if champion_note else "")

    tracker = Tracker(tracking_uri, description=EXPERIMENT_DESCRIPTION)
    with progress.step("track") as info, tracker.run(f"train-{now:%Y%m%dT%H%M%S}") as run:
        run.log_params({"config": settings.model_dump(mode="json"), "data_dir": str(data_dir)})
        if tuning is not None:
            _log_trials(run, tuning)
        stats = _data_stats(dataset, examples)
        run.log_params({"data": stats})
        run.log_dataset(dataset.events, source=data_dir, name="events")
        run.log_metrics({**metrics, **{f"duration.{k}": v for k, v in progress.durations.items()}})
        split = _split_stats(examples)
        for name, figure in report_figures(ranker.feature_importance(), ranker.validation_curve_, ranker.validation_metric_,
                                           ranker.best_iteration_):
            run.log_figure(figure, f"report/{name}")
        for name, table in report_tables(evaluation).items():
            run.log_table(table, f"report/{name}")
        run.log_text(markdown_report(evaluation, data_stats=stats, split=split, objective=t.objective,
                                     best_iteration=ranker.best_iteration_, gate_reason=decision.reason,
                                     provenance=_provenance(examples, refit=shipped is not ranker)), "report/report.md")
        run.describe(run_description(evaluation, data_stats=stats, split=split, gate_metric=gate_metric.name, decision=decision,
                                     figure_urls={title: run.artifact_url(f"report/{name}") for name, title in FIGURES.items()}))
        run.log_dict(settings.model_dump(mode="json"), "config.json")
        run.log_text(dataset.report.render(), "validation_report.txt")
        example = pd.DataFrame(examples.features_of(TEST)[:5], columns=list(examples.features.names))
        version = run.log_lightgbm_model(shipped.booster_, example, registered_name=MODEL_NAME, model_description=MODEL_DESCRIPTION,
                                         version_description=version_description(run.run_id, decision))
        run.set_tags({"nbm.gate": decision.reason})
        info["detail"] = f"run {run.run_id}, registered {MODEL_NAME} version {version.version}"

    with progress.step("bundle") as info:
        metadata = {
            "model_version": str(version.version), "model_name": MODEL_NAME, "run_id": run.run_id,
            "trained_at": now.isoformat(), "data_start": dataset.events["ts"].min().isoformat(),
            "data_end": last_event(dataset.events), "objective": t.objective, "target": t.target, "best_iteration": ranker.best_iteration_,
            "refit_on_all_data": shipped is not ranker,
            "metrics": {k: metrics[k] for k in sorted(metrics) if "." not in k or k.startswith(("popularity.", "gain"))},
            "promoted": decision.promote, "gate": decision.reason,
        }
        path = write_bundle(model_dir, booster=shipped.booster_, evaluation_booster=None if shipped is ranker else ranker.booster_, spec=spec, feature_names=examples.features.names,
                            messages=dataset.messages, customers=dataset.customers, state=state, snapshot=snapshot,
                            metadata=metadata, name=f"bundle-{now:%Y%m%dT%H%M%S}-v{version.version}",
                            make_current=False)
        # Logged before it becomes current: a store outage here leaves serving and the aliases as they were.
        run.log_bundle(path)
        if decision.promote:
            set_current(model_dir, path.name)
        info["detail"] = (f"{path}, logged to run {run.run_id} as {BUNDLE_ARTIFACT_PATH}/"
                          + ("" if decision.promote else " (challenger: not made current)"))

    with progress.step("promote") as info:
        alias = tracker.promote(MODEL_NAME, version.version, decision)
        info["detail"] = f"{MODEL_NAME} version {version.version} is now '{alias}'"
    return TrainOutcome(version.version, run.run_id, path, decision, metrics, gate_metric)


def _reuse_tuned(settings: Settings, tuned: Tuned | None, model_dir: Path, progress: Progress) -> Settings:
    """``[training] use_tuned``: the settings of the last search if there is one for this objective."""
    if tuned is None:
        progress.say(f"note: use_tuned = true but there is no {model_dir / TUNED_FILE} (run nbm train --tune once): "
                     "fitting with the configured settings")
        return settings
    if tuned.objective != settings.training.objective:
        progress.say(f"note: {tuned.path} was tuned for the {tuned.objective} objective, not {settings.training.objective}: "
                     "fitting with the configured settings")
        return settings
    progress.say(f"using the tuned settings of {tuned.path} (tuned {tuned.tuned_at} on data {tuned.data_start} to "
                 f"{tuned.data_end}): {describe(tuned.params)}")
    return with_params(settings, tuned.params, source=str(tuned.path))


def _log_trials(run, tuning: TuningResult) -> None:
    """One nested MLflow run per trial, and the search's summary on the parent run."""
    for record in tuning.trials:
        run.log_child_run(f"tune-trial-{record.number}", params=record.params,
                          metrics={f"validation.{tuning.metric}": record.value, "rounds": record.rounds, "seconds": record.seconds},
                          tags={"nbm.tuning.pruned": str(record.pruned).lower()})
    run.log_metrics({f"tuning.validation.{tuning.metric}": tuning.best_value,
                     f"tuning.default_validation.{tuning.metric}": tuning.default_value,
                     "tuning.trials": len(tuning.trials), "tuning.pruned": sum(r.pruned for r in tuning.trials)})


@dataclass(frozen=True, eq=False)
class Evaluated:
    """What :func:`fit_and_evaluate` leaves: the data, its features and the fitted, evaluated model."""

    dataset: Dataset
    spec: FeatureSpec
    examples: Examples  # only the test rows' features kept
    ranker: Ranker
    evaluation: Evaluation


def fit_and_evaluate(data_dir: Path, settings: Settings) -> Evaluated:
    """``nbm train``'s validate, examples, fit and evaluate steps on ``data_dir``, without tuning, refit,
    tracking or a bundle: for benches and tests that judge the evaluation itself."""
    dataset = load_dataset(data_dir, settings.validation)
    spec = FeatureSpec.fit(dataset.messages, dataset.customers, settings.features)
    history = history_for(dataset.events, spec)
    examples = build_examples(dataset.events, history, CatalogTable.from_messages(dataset.messages, spec),
                              ProfileTable.from_customers(dataset.customers), spec, settings, messages=dataset.messages)
    ranker = fit_ranker(examples, spec, settings)
    examples = examples.keep_features_of(TEST)
    evaluation = evaluate(examples, ranker, history, spec, settings, dataset.events, dataset.messages, dataset.customers,
                          load_truth(data_dir))
    return Evaluated(dataset, spec, examples, ranker, evaluation)


def gate_metric_cannot_judge(evaluation: Evaluation, metric: str) -> str | None:
    """Why the gate's ``metric`` cannot tell models apart on this test window, or None."""
    model = evaluation.ranking.loc[(MODEL, "all")]
    return metric_cannot_judge(metric, int(model["ordering_groups"]), int(model["groups"]))


def gate_inputs(metrics: dict[str, float], metric: GateMetric) -> tuple[Measured, Versus | None, Versus]:
    """The candidate's value of the gate's metric, and the champion (None when it has no value) and
    popularity beside it, from the evaluation's metrics: with an off-policy metric, values with their
    intervals and the paired differences (``ope.dr.vs.popularity``); with a ranking metric, plain values."""
    key = metric.key
    nan = float("nan")

    def measured(name: str) -> Measured:
        return Measured(metrics.get(name, nan), metrics.get(f"{name}.ci_low", nan), metrics.get(f"{name}.ci_high", nan))

    def versus(other: str) -> Versus:
        if metric.off_policy:
            return Versus(measured(f"{other}.{key}"), measured(f"{key}.vs.{other}"))
        return Versus(measured(f"{other}.{key}"), Measured(metrics.get(key, nan) - metrics.get(f"{other}.{key}", nan)))

    champion = versus(CHAMPION) if f"{CHAMPION}.{key}" in metrics else None
    return measured(key), champion, versus(POPULARITY)


def make_ranker(spec: FeatureSpec, settings: Settings, feature_names: tuple[str, ...]) -> Ranker:
    """An unfitted ranker with the ``[training]`` settings."""
    t = settings.training
    return Ranker(objective=t.objective, relevant_from=t.success_label, num_leaves=t.num_leaves,
                  learning_rate=t.learning_rate, max_rounds=t.max_rounds, early_stopping_rounds=t.early_stopping_rounds,
                  min_data_in_leaf=t.min_data_in_leaf, feature_fraction=t.feature_fraction,
                  bagging_fraction=t.bagging_fraction, lambda_l2=t.lambda_l2, seed=t.seed,
                  num_threads=t.num_threads, categorical_features=categorical_features(spec, feature_names))


def fit_ranker(examples: Examples, spec: FeatureSpec, settings: Settings, *, on_round: Advance | None = None) -> Ranker:
    """The evaluated model: fitted on the train split, early-stopped on the validation split."""
    frame, x = examples.frame, examples.features.values
    train, valid = examples.part(TRAIN), examples.part(VALIDATION)
    grades, groups = frame["grade"].to_numpy(), frame["group"].to_numpy()
    ranker = make_ranker(spec, settings, examples.features.names)
    return ranker.fit(x[train], grades[train], groups[train], examples.features.names, x[valid], grades[valid], groups[valid],
                      weight=frame["weight"].to_numpy()[train], on_round=on_round)


@dataclass(frozen=True, eq=False)
class RefitRows:
    """What the shipped model is fitted on: blocks of feature rows (views, or copies of the rows kept),
    and each row's label, group and weight."""

    blocks: list[np.ndarray]
    grades: np.ndarray
    groups: np.ndarray
    weight: np.ndarray


def refit_rows(examples: Examples, settings: Settings) -> RefitRows:
    """The examples of every split. As in training, the binary objective keeps every positive and a seeded
    share ``negative_sample_rate`` of the validation and test negatives, weighted 1 / rate (the training
    rows were sampled so already): the refit costs what its rows cost, and its probabilities stay
    calibrated."""
    t = settings.training
    frame, values = examples.frame, examples.features.values
    grades, groups, weight = frame["grade"].to_numpy(), frame["group"].to_numpy(), frame["weight"].to_numpy()
    if t.objective != "binary" or t.negative_sample_rate == 1:
        return RefitRows([values], grades, groups, weight)
    later = slice(examples.part(VALIDATION).start, len(frame))
    keep, later_weight = sample_negatives(grades[later], np.full(later.stop - later.start, TRAIN), relevant_from=t.success_label,
                                          rate=t.negative_sample_rate, seed=t.seed)
    return RefitRows([values[: later.start], values[later][keep]],  # a copy of the later rows kept only
                     np.concatenate([grades[: later.start], grades[later][keep]]),
                     np.concatenate([groups[: later.start], groups[later][keep]]),
                     np.concatenate([weight[: later.start], later_weight]))


def refit_on_all(examples: Examples, settings: Settings, ranker: Ranker, *, on_round: Advance | None = None) -> Ranker:
    """The shipped model: ``ranker``'s settings and chosen number of rounds, fitted on :func:`refit_rows`."""
    rows = refit_rows(examples, settings)
    return ranker.for_refit().fit(rows.blocks, rows.grades, rows.groups, examples.features.names, weight=rows.weight,
                                  on_round=on_round)


def censored_note(examples: Examples) -> str:
    train, validation, test = examples.censored
    return (f"{train + validation + test:,} impressions left out of training and evaluation because their attribution "
            f"window reaches past the end of the data (train {train:,}, validation {validation:,}, test {test:,}): "
            "their outcomes are not all in the data yet")


def last_event(events: pd.DataFrame) -> str:
    """The time of the last event, as printed (the data's exclusive end is one nanosecond later)."""
    return events["ts"].max().isoformat()


def _provenance(examples: Examples, *, refit: bool) -> list[str]:
    """Which data each figure of the report comes from, and which model is shipped."""
    b = examples.bounds
    lines = [f"Every figure below comes from the model fitted on the train split (impressions before "
             f"{b.validation_start.isoformat()}), early-stopped on the validation split, and is measured on the test "
             f"window ({b.test_start.isoformat()} to the end of the data); the baselines are fitted on the train split."]
    if sum(examples.censored):
        lines.append(f"Left out: {censored_note(examples)}.")
    lines.append("The shipped model was refit on train + validation + test with the same number of rounds; "
                 "the bundle keeps the evaluated model as evaluation_model.txt." if refit else
                 "The shipped model is the evaluated one ([training] refit_on_all_data = false).")
    return lines


def _customer_snapshot(dataset: Dataset, history, catalog, profiles, spec, end: pd.Timestamp, *,
                       on_rows: Advance | None = None) -> pd.DataFrame:
    """Customer-level features of every known customer as of the end of the data (no candidate)."""
    ids = pd.Index(pd.concat([dataset.customers["customer_id"], dataset.events["customer_id"]]).astype(str).unique()).sort_values()
    requests = pd.DataFrame({"customer_id": ids, "as_of": end})
    matrix = build_features(requests, history, catalog, profiles, spec, on_rows=on_rows)
    customer_level = [i for i, n in enumerate(matrix.names) if not n.startswith("msg_")]
    frame = pd.DataFrame(matrix.values[:, customer_level], columns=[matrix.names[i] for i in customer_level])
    frame.insert(0, "customer_id", ids)
    return frame


def _champion_on_this_window(model_dir: Path, examples: Examples, evaluation: Evaluation, dataset: Dataset, settings: Settings,
                             truth: GroundTruth | None) -> tuple[Evaluation, dict[str, float], str]:
    """The current champion (what serving runs) on this run's test window: ``evaluation`` with the
    champion replayed on the same decisions through the decision engine (its off-policy values, paired
    differences and true gain), its ranking metrics (``champion.auc``, ...) re-scored on the test rows,
    and a note. A champion whose features this code does not build is left out: compared with popularity
    only, and the note says so."""
    try:
        champion = load_bundle(model_dir)
    except BundleError:
        return evaluation, {}, NO_CHAMPION
    other_features = f"champion {champion.version} uses other features, compared with popularity only"
    if champion.feature_names != examples.features.names:
        return evaluation, {}, other_features
    try:
        choices = replay_champion(champion, evaluation, settings, dataset.events, dataset.messages, dataset.customers)
    except ModelMismatchError:
        return evaluation, {}, other_features
    evaluation = with_policies(evaluation, {CHAMPION: choices}, truth=truth, events=dataset.events, messages=dataset.messages,
                               seed=settings.training.seed)
    test = examples.part(TEST)
    frame = examples.frame.iloc[test].assign(label=examples.frame["grade"].to_numpy()[test])
    # Its evaluated model: the refit one has seen part of this test window.
    frame["score"] = champion.evaluation_booster.predict(examples.features_of(TEST), num_threads=settings.training.num_threads)
    report = ranking_report(frame, "score", relevant_from=settings.training.success_label).loc["all"]
    ranking = {f"{CHAMPION}.{k}": float(report[k]) for k in ("ndcg@1", "ndcg@3", "ndcg@5", "map", "auc")}
    return evaluation, ranking, f"champion {champion.version} replayed on this test window's decisions"


def _data_stats(dataset: Dataset, examples: Examples) -> dict:
    events = dataset.events
    with_events = events["customer_id"].astype(str).unique()
    loaded = dataset.customers["customer_id"].astype(str)
    return {
        "events": len(events), "customers": int(pd.Index(loaded).union(pd.Index(with_events)).nunique()),
        "customers_in_table": len(loaded), "customers_with_events": len(with_events), "messages": len(dataset.messages),
        "impressions": len(examples.frame), "impressions_censored": int(sum(examples.censored)),
        "rejected_rows": len(dataset.report.rejects),
        "start": events["ts"].min().isoformat(), "end": last_event(events),
    }


def _split_stats(examples: Examples) -> dict:
    b = examples.bounds
    counts = np.bincount(examples.frame["split"], minlength=3)
    return {"validation_start": b.validation_start.isoformat(), "test_start": b.test_start.isoformat(),
            "end": (b.end - pd.Timedelta(1, "ns")).isoformat(), "train_rows": int(counts[TRAIN]), "validation_rows": int(counts[VALIDATION]),
            "test_rows": int(counts[TEST])}


__all__ = ["Evaluation", "TrainOutcome", "train"]
