"""The LightGBM ranker, with scikit-learn manners: ``__init__`` stores, ``fit`` returns self, learned
attributes end in ``_``.

Two objectives: ``lambdarank`` optimises the order within query groups directly and stops early on the
validation NDCG@3 of the groups that hold a positive label; ``binary`` learns a calibrated probability
of a relevant outcome (needed when message value enters arbitration) and stops on validation log loss.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Literal

import lightgbm as lgb
import numpy as np

from engine.model.groups import group_sizes_in_order

Objective = Literal["lambdarank", "binary"]
EARLY_STOPPING_METRIC_AT = 3


class Ranker:
    def __init__(
        self,
        *,
        objective: Objective = "binary",
        relevant_from: int = 2,
        num_leaves: int = 31,
        learning_rate: float = 0.05,
        max_rounds: int = 400,
        early_stopping_rounds: int = 30,
        min_data_in_leaf: int = 50,
        feature_fraction: float = 0.9,
        bagging_fraction: float = 1.0,
        lambda_l2: float = 0.0,
        seed: int = 17,
        num_threads: int = 2,
        categorical_features: tuple[str, ...] = (),
    ) -> None:
        self.objective = objective
        self.relevant_from = relevant_from
        self.num_leaves = num_leaves
        self.learning_rate = learning_rate
        self.max_rounds = max_rounds
        self.early_stopping_rounds = early_stopping_rounds
        self.min_data_in_leaf = min_data_in_leaf
        self.feature_fraction = feature_fraction
        self.bagging_fraction = bagging_fraction
        self.lambda_l2 = lambda_l2
        self.seed = seed
        self.num_threads = num_threads
        self.categorical_features = categorical_features

    def lightgbm_params(self) -> dict:
        # A ranker stops on what it optimises, the order within groups; a probability model on its log
        # loss, which NDCG over tiny groups measures too noisily.
        metric = {"metric": "ndcg", "eval_at": [EARLY_STOPPING_METRIC_AT]} if self.objective == "lambdarank" else {"metric": "binary_logloss"}
        return {
            "objective": self.objective,
            **metric,
            "num_leaves": self.num_leaves,
            "learning_rate": self.learning_rate,
            "min_data_in_leaf": self.min_data_in_leaf,
            "feature_fraction": self.feature_fraction,
            "bagging_fraction": self.bagging_fraction,
            "bagging_freq": 1 if self.bagging_fraction < 1 else 0,
            "lambda_l2": self.lambda_l2,
            "seed": self.seed,
            "num_threads": self.num_threads,
            # Same data and config, same model: no thread-order or histogram-layout randomness.
            "deterministic": True,
            "force_col_wise": True,
            "verbosity": -1,
        }

    def _labels(self, grades: np.ndarray) -> np.ndarray:
        if self.objective == "binary":
            return (grades >= self.relevant_from).astype(np.float64)
        return grades.astype(np.float64)

    def _dataset(self, features: np.ndarray | list[np.ndarray], grades: np.ndarray, groups: np.ndarray, names: list[str],
                 reference: lgb.Dataset | None = None, weight: np.ndarray | None = None) -> lgb.Dataset:
        order, sizes = group_sizes_in_order(groups)
        if order is not None:  # groups interleaved: LightGBM needs them contiguous
            if isinstance(features, list):
                features = np.concatenate(features)
            features, grades = features[order], grades[order]
            weight = None if weight is None else weight[order]
        categorical = [n for n in self.categorical_features if n in names]
        return lgb.Dataset(
            features, label=self._labels(grades), group=sizes, weight=weight, feature_name=names,
            categorical_feature=categorical, reference=reference, free_raw_data=True,
        )

    def fit(self, features: np.ndarray | list[np.ndarray], grades: np.ndarray, groups: np.ndarray, feature_names: tuple[str, ...],
            valid_features: np.ndarray | None = None, valid_grades: np.ndarray | None = None,
            valid_groups: np.ndarray | None = None, weight: np.ndarray | None = None,
            on_round: Callable[[int, int], None] | None = None,
            on_validation: Callable[[int, float], None] | None = None) -> Ranker:
        """``features``: one matrix, or a list of blocks of rows (LightGBM reads them in turn, so rows kept
        from several parts of a matrix need no joined copy). ``weight`` per training row: e.g. 1 / rate for
        negatives kept by :mod:`engine.model.sampling`;
        ``on_round(done, at_most)`` hears each finished boosting round (a progress bar). Without a
        validation set every one of ``max_rounds`` rounds is grown (a refit with a known round count).
        ``on_validation(round, value)`` hears the early-stopping metric after each round (a tuner's pruner);
        an exception it raises ends the fit and propagates."""
        names = list(feature_names)
        train = self._dataset(features, grades, groups, names, weight=weight)
        evals: dict = {}
        callbacks = [*([] if on_round is None else [lambda env: on_round(env.iteration + 1, self.max_rounds)])]
        valid_sets = []
        if valid_features is not None:
            # LightGBM scores a group without any positive label as a perfect 1, which would drown the
            # signal: early stopping looks only at validation groups that have something to rank.
            keep = (
                _groups_with_a_positive(self._labels(valid_grades), valid_groups)
                if self.objective == "lambdarank"
                else np.ones(len(valid_grades), dtype=bool)
            )
            valid_sets = [self._dataset(valid_features[keep], valid_grades[keep], valid_groups[keep], names, reference=train)]
            callbacks += [lgb.early_stopping(self.early_stopping_rounds, first_metric_only=True, verbose=False),
                          lgb.record_evaluation(evals)]
            if on_validation is not None:
                callbacks.append(lambda env: on_validation(env.iteration + 1, float(env.evaluation_result_list[0][2])))
        self.booster_ = lgb.train(
            self.lightgbm_params(),
            train,
            num_boost_round=self.max_rounds,
            valid_sets=valid_sets,
            valid_names=["validation"][: len(valid_sets)],
            callbacks=callbacks,
        )
        self.booster_.free_dataset()  # the binned training data is not needed to predict
        self.best_iteration_ = int(self.booster_.best_iteration or self.max_rounds)
        self.feature_names_ = tuple(feature_names)
        curves = evals.get("validation", {})
        self.validation_metric_ = next(iter(curves), "")
        self.validation_curve_ = list(curves.get(self.validation_metric_, []))
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        """Scores for ranking; with the binary objective, the probability of a relevant outcome."""
        return self.booster_.predict(features, num_iteration=self.best_iteration_, num_threads=self.num_threads)

    def get_params(self) -> dict:
        """The constructor's arguments, as scikit-learn estimators give them."""
        return {name: getattr(self, name) for name in inspect.signature(Ranker.__init__).parameters if name != "self"}

    def for_refit(self) -> Ranker:
        """An unfitted ranker with these parameters that grows the rounds early stopping chose here, for
        a refit on more data without a validation set."""
        return Ranker(**{**self.get_params(), "max_rounds": self.best_iteration_})

    def splits(self) -> int:
        """How many splits the model's trees make up to the best iteration: 0 for a constant model, one
        that learned nothing (e.g. fewer rows than ``min_data_in_leaf`` on each side of every split)."""
        counts = self.booster_.feature_importance(importance_type="split", iteration=self.best_iteration_)
        return int(np.sum(counts))

    def feature_importance(self) -> dict[str, float]:
        gains = self.booster_.feature_importance(importance_type="gain", iteration=self.best_iteration_)
        return dict(zip(self.feature_names_, (float(g) for g in gains)))


def _groups_with_a_positive(labels: np.ndarray, groups: np.ndarray) -> np.ndarray:
    positive_groups = np.unique(groups[labels > 0])
    return np.isin(groups, positive_groups)
