"""``nbm train --tune``: the search of engine/model/tuning.py on a run's train/validation split, and the
``<model-dir>/tuned.json`` file that keeps its choice for later runs (``[training] use_tuned``)."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from engine.config import Settings, TrainingSettings
from engine.errors import DataError
from engine.model.examples import Examples
from engine.model.ranker import Ranker
from engine.model.split import TRAIN, VALIDATION
from engine.model.tuning import SEARCH_SPACE, TrialRecord, TuningData, TuningResult, tune

TUNED_FILE = "tuned.json"
TUNED_FORMAT = 1
DEFAULT_TUNE_MINUTES = 10.0
DEFAULT_TUNE_TRIALS = 100


@dataclass(frozen=True)
class TuneRequest:
    """``--tune-minutes`` (checked between trials) and ``--tune-trials``."""

    budget_seconds: float
    max_trials: int


@dataclass(frozen=True)
class Tuned:
    """What tuned.json holds: the chosen settings and where they come from."""

    path: Path
    params: dict[str, float | int]
    objective: str
    tuned_at: str
    data_start: str
    data_end: str


def tuning_data(examples: Examples) -> TuningData:
    """The train and validation rows of ``examples``, as :func:`training.pipeline.fit_ranker` fits on them."""
    frame, x = examples.frame, examples.features.values
    train, valid = examples.part(TRAIN), examples.part(VALIDATION)
    grades, groups = frame["grade"].to_numpy(), frame["group"].to_numpy()
    return TuningData(x[train], grades[train], groups[train], frame["weight"].to_numpy()[train],
                      x[valid], grades[valid], groups[valid], tuple(examples.features.names))


def run_search(examples: Examples, base: Ranker, settings: Settings, request: TuneRequest, *,
               on_trial: Callable[[TrialRecord], None] | None = None) -> TuningResult:
    """The search around ``base`` (the ranker the configured settings make) on ``examples``' split."""
    return tune(tuning_data(examples), base, seed=settings.training.seed, budget_seconds=request.budget_seconds,
                n_trials=request.max_trials, on_trial=on_trial)


def with_params(settings: Settings, params: dict[str, Any], *, source: str) -> Settings:
    """``settings`` with ``[training]`` values replaced by ``params`` (validated as the config file is)."""
    unknown = sorted(set(params) - set(SEARCH_SPACE))
    if unknown:
        raise DataError(f"unknown tuned setting(s) {', '.join(unknown)}; expected only {', '.join(SEARCH_SPACE)}", path=source)
    try:
        training = TrainingSettings.model_validate({**settings.training.model_dump(), **params})
    except ValidationError as error:
        raise DataError(f"tuned settings are invalid: {error.errors()[0]['loc'][0]}: {error.errors()[0]['msg']}", path=source) from error
    return settings.model_copy(update={"training": training})


def write_tuned(model_dir: Path, result: TuningResult, settings: Settings, *, now: datetime, data_start: str,
                data_end: str) -> Path:
    """``<model_dir>/tuned.json``, written whole (a temporary file renamed) so a reader never sees half of it."""
    model_dir.mkdir(parents=True, exist_ok=True)
    body = {
        "format": TUNED_FORMAT, "params": result.best_params, "objective": settings.training.objective,
        "metric": result.metric, "validation_value": result.best_value, "default_validation_value": result.default_value,
        "trials": len(result.trials), "pruned": sum(t.pruned for t in result.trials),
        "budget_exhausted": result.budget_exhausted, "tuned_at": now.isoformat(), "data_start": data_start, "data_end": data_end,
    }
    path = model_dir / TUNED_FILE
    scratch = path.with_suffix(".json.tmp")
    scratch.write_text(json.dumps(body, indent=2) + "\n")
    scratch.replace(path)
    return path


def read_tuned(model_dir: Path) -> Tuned | None:
    """The settings of ``<model_dir>/tuned.json``; None if there is none; ``DataError`` if it is corrupt."""
    path = model_dir / TUNED_FILE
    if not path.is_file():
        return None
    try:
        body = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise DataError(f"not a readable tuned-settings file ({error}); run nbm train --tune again or delete it", path=str(path)) from error
    if not isinstance(body, dict) or not isinstance(body.get("params"), dict):
        raise DataError("not a tuned-settings file: no 'params' object; run nbm train --tune again or delete it", path=str(path))
    missing = [k for k in ("objective", "tuned_at", "data_start", "data_end") if not isinstance(body.get(k), str)]
    if missing:
        raise DataError(f"tuned-settings file lacks {', '.join(missing)}; run nbm train --tune again or delete it", path=str(path))
    return Tuned(path, body["params"], body["objective"], body["tuned_at"], body["data_start"], body["data_end"])


def describe(params: dict[str, float | int]) -> str:
    return ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in params.items())


def trial_line(record: TrialRecord, metric: str) -> str:
    state = f"pruned at round {record.rounds}" if record.pruned else f"best round {record.rounds}"
    return f"trial {record.number}: {metric} {record.value:.5f} ({state}; {describe(record.params)})"
