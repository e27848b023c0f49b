"""Training examples: labelled impressions with their split, query group and features."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from engine.config import Settings
from engine.features.build import CatalogTable, FeatureMatrix, ProfileTable, build_features, make_history
from engine.features.history import History
from engine.features.log import EventLog
from engine.features.spec import FeatureSpec
from engine.model.groups import assign_groups
from engine.model.labels import label_impressions, observed_in_full
from engine.model.sampling import sample_negatives
from engine.model.split import SplitBounds, assign_split, check_split_sizes, split_bounds
from engine.timeutil import to_ns

# LightGBM treats these as categories, not numbers.
CATEGORICAL_FEATURES = ("msg_channel", "msg_topic", "msg_stage", "journey_stage")


@dataclass(frozen=True, eq=False)
class Examples:
    """Rows sorted by (split, group, ts): each split is one contiguous block and each query group a run of
    rows, so the model is fitted on views of the feature matrix, never on copies of it (memory). With the
    binary objective the training split holds a sample of the negatives, ``weight`` = 1 / rate on them."""

    frame: pd.DataFrame
    features: FeatureMatrix  # rows from ``features_start`` on (all rows until :meth:`keep_features_of`)
    bounds: SplitBounds
    features_start: int = 0
    # Impressions left out per split (train, validation, test) because the end of the data cut their
    # attribution window short.
    censored: tuple[int, int, int] = (0, 0, 0)

    def part(self, split: int) -> slice:
        splits = self.frame["split"].to_numpy()
        start, stop = np.searchsorted(splits, [split, split + 1])
        return slice(int(start), int(stop))

    def features_of(self, split: int) -> np.ndarray:
        """The feature rows of one split (a view)."""
        part = self.part(split)
        start, stop = part.start - self.features_start, part.stop - self.features_start
        if start < 0 or stop > len(self.features.values):
            raise ValueError(f"the features of split {split} were released (keep_features_of)")
        return self.features.values[start:stop]

    def keep_features_of(self, split: int) -> Examples:
        """These examples holding only ``split``'s feature rows (a copy), so that the rest of the matrix
        can be freed once the model is fitted: evaluation reads the test rows alone."""
        rows = self.features_of(split).copy()
        return replace(self, features=FeatureMatrix(self.features.names, rows), features_start=self.part(split).start)


def data_end(events: pd.DataFrame) -> pd.Timestamp:
    """The instant right after the last event: the exclusive end of the data."""
    return events["ts"].max() + pd.Timedelta(1, "ns")


def build_examples(events: pd.DataFrame, history: History, catalog: CatalogTable, profiles: ProfileTable,
                   spec: FeatureSpec, settings: Settings, *, messages: pd.DataFrame | None = None,
                   on_rows: Callable[[int, int], None] | None = None) -> Examples:
    """One row per impression whose attribution window the data covers, labelled, split and grouped, with
    its features; ``messages``: the catalog (per-message attribution windows); ``on_rows`` as in
    :func:`build_features`.

    ``outcome`` is the best outcome grade (0 none .. 3 conversion), ``grade`` the training label: the
    outcome for the graded target, else 1 if the outcome reached the target."""
    training = settings.training
    frame = label_impressions(events, training.attribution_days, messages).rename(columns={"grade": "outcome"})
    frame["grade"] = target_labels(frame["outcome"].to_numpy(), settings)
    # By customer then time: sorted codes of the ids order like the ids, and sort far faster than strings.
    customer_rank = pd.factorize(frame["customer_id"], sort=True)[0]
    frame = frame.take(np.lexsort((to_ns(frame["ts"]), customer_rank))).reset_index(drop=True)
    end = data_end(events)
    bounds = split_bounds(end, training.test_days, training.validation_days)
    frame["split"] = assign_split(frame["ts"], bounds)
    observed = observed_in_full(frame["window_end"], end)
    censored = np.bincount(frame["split"].to_numpy()[~observed], minlength=3)
    frame = frame.loc[observed].reset_index(drop=True)
    check_split_sizes(frame["split"].to_numpy(), censored=censored)
    frame["group"] = assign_groups(frame, frame["split"].to_numpy(), training.group_window_days)
    frame["weight"] = 1.0
    if training.objective == "binary" and training.negative_sample_rate < 1:
        # Dropped before features are built: those rows cost neither feature time nor matrix memory.
        keep, weight = sample_negatives(frame["grade"].to_numpy(), frame["split"].to_numpy(), relevant_from=training.success_label,
                                        rate=training.negative_sample_rate, seed=training.seed)
        frame = frame.loc[keep].reset_index(drop=True)
        frame["weight"] = weight
    frame = frame.sort_values(["split", "group", "ts"], kind="stable", ignore_index=True)
    frame["group"] = pd.factorize(frame["group"])[0]  # numbered in row order: non-decreasing
    requests = pd.DataFrame({"customer_id": frame["customer_id"], "as_of": frame["ts"], "message_id": frame["message_id"]})
    features = build_features(requests, history, catalog, profiles, spec, on_rows=on_rows)
    return Examples(frame, features, bounds, censored=tuple(int(c) for c in censored))


def target_labels(outcome: np.ndarray, settings: Settings) -> np.ndarray:
    """The training label of each impression from its best outcome grade: the grade itself for the
    graded target, else 1 if it reached the target outcome (``[training] target``), 0 if not."""
    training = settings.training
    if training.target == "graded":
        return np.asarray(outcome, dtype=np.int8)
    return (np.asarray(outcome) >= training.success_grade).astype(np.int8)


def categorical_features(spec: FeatureSpec, names: tuple[str, ...]) -> tuple[str, ...]:
    from_encoders = [f"profile_{e.column}" for e in spec.profile_encoders if e.kind == "category"]
    from_encoders += [f"msg_attr_{e.column}" for e in spec.message_encoders if e.kind == "category"]
    return tuple(n for n in (*CATEGORICAL_FEATURES, *from_encoders) if n in names)


def history_for(events: pd.DataFrame, spec: FeatureSpec) -> History:
    return make_history(EventLog.from_events(events, spec.vocab), spec)
