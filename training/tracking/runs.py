"""``Tracker`` and what the training pipeline logs into one of its runs: params, metrics, tags, artifacts,
the bundle and the LightGBM model, registered as a new version."""

from __future__ import annotations

import logging
import math
import time
import warnings
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import mlflow
import mlflow.data
import mlflow.lightgbm
from mlflow.entities import DatasetInput, InputTag, Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_ALREADY_EXISTS

from training.tracking.errors import ModelNotRegisteredError, TrackingUnavailableError
from training.tracking.names import (BUNDLE_ARTIFACT_PATH, DESCRIPTION_TAG, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND,
                                     flatten_params, mlflow_name, tag_value)
from training.tracking.registry import DEFAULT_MODEL_NAME, ModelRegistry, ModelVersionInfo
from training.tracking.store import RetryPolicy, Store, default_artifact_location, has_code

if TYPE_CHECKING:
    import lightgbm
    import pandas as pd
    from matplotlib.figure import Figure

_logger = logging.getLogger(__name__)

_BATCH_LIMITS = {"params": 100, "tags": 100, "metrics": 1000}  # per log_batch request


class RunHandle:
    """What the training pipeline logs into one MLflow run."""

    def __init__(self, run_id: str, store: Store) -> None:
        self.run_id = run_id
        self._store = store

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._log_batch("params", [Param(mlflow_name(key), value) for key, value in flatten_params(params).items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """A NaN is logged as NaN (MLflow stores it) with a warning; keys are renamed by ``mlflow_name``
        (``ndcg@3`` -> ``ndcg_at_3``, the one rule docs/training.md states), two names mapping to one key refused."""
        timestamp_ms = int(time.time() * 1000)
        entities: list[Metric] = []
        original_names: dict[str, str] = {}
        for name, value in metrics.items():
            key = mlflow_name(name)
            if original_names.setdefault(key, name) != name:
                raise ValueError(f"metrics {original_names[key]!r} and {name!r} both map to MLflow key {key!r}")
            if math.isnan(value):
                _logger.warning("metric %s is NaN in run %s", name, self.run_id)
            entities.append(Metric(key, float(value), timestamp_ms, step or 0))
        self._log_batch("metrics", entities)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._log_batch("tags", [RunTag(mlflow_name(key), str(value)) for key, value in tags.items()])

    def describe(self, markdown: str) -> None:
        """The run's description: the Markdown the run page opens with (MLflow's ``mlflow.note.content`` tag)."""
        client = self._store.client
        self._store.call("setting the run description", client.set_tag, self.run_id, DESCRIPTION_TAG, tag_value(markdown))

    def artifact_url(self, artifact_file: str) -> str:
        """Where MLflow's UI serves one of this run's artifacts, relative to the UI's page (its ``get-artifact``
        route): what the description's images link to."""
        return f"get-artifact?{urlencode({'path': artifact_file, 'run_uuid': self.run_id})}"

    def log_dict(self, obj: Mapping[str, Any], artifact_file: str) -> None:
        """JSON, or YAML when ``artifact_file`` ends in .yaml/.yml."""
        self._store.call(f"logging {artifact_file}", self._store.client.log_dict, self.run_id, dict(obj), artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._store.call(f"logging {artifact_file}", self._store.client.log_text, self.run_id, text, artifact_file)

    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        self._store.call(f"logging {artifact_file}", self._store.client.log_figure, self.run_id, figure, artifact_file)

    def log_child_run(self, run_name: str, *, params: Mapping[str, Any], metrics: Mapping[str, float],
                      tags: Mapping[str, Any]) -> str:
        """A finished run nested under this one (MLflow's ``mlflow.parentRunId`` tag), e.g. one tuning trial;
        its id."""
        client = self._store.client
        parent = self._store.call("reading the parent run", client.get_run, self.run_id)
        nested_tags = {"mlflow.parentRunId": self.run_id, "mlflow.runName": run_name}
        child = self._store.call(f"starting nested run {run_name!r}", client.create_run, parent.info.experiment_id,
                                 tags=nested_tags, run_name=run_name)
        handle = RunHandle(child.info.run_id, self._store)
        handle.log_params(params)
        handle.log_metrics(metrics)
        handle.set_tags(tags)
        self._store.call(f"ending nested run {run_name!r}", client.set_terminated, handle.run_id, "FINISHED")
        return handle.run_id

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        if not Path(path).exists():  # checked here so that a typo is not retried nor reported as a store outage
            raise FileNotFoundError(f"artifact to log does not exist: {path}")
        self._store.call(f"logging {path}", self._store.client.log_artifact, self.run_id, str(path), artifact_path)

    def log_bundle(self, bundle: Path) -> None:
        """The files of a bundle folder under ``bundle/``; works after the run has ended."""
        if not Path(bundle).is_dir():
            raise FileNotFoundError(f"bundle to log does not exist: {bundle}")
        action = f"logging bundle {bundle}"
        self._store.call(action, self._store.client.log_artifacts, self.run_id, str(bundle), BUNDLE_ARTIFACT_PATH)

    def log_table(self, frame: pd.DataFrame, artifact_file: str) -> None:
        """The frame as an MLflow table at ``artifact_file`` (a .json, e.g. ``eval/by_segment.json``), which the
        run's artifact viewer shows as a table; a named index becomes columns."""
        if not artifact_file.endswith(".json"):
            raise ValueError(f"MLflow tables are JSON files: {artifact_file!r} must end in .json")
        table = frame.reset_index() if any(name is not None for name in frame.index.names) else frame
        self._store.call(f"logging {artifact_file}", self._store.client.log_table, self.run_id, table, artifact_file)

    def log_dataset(self, frame: pd.DataFrame, *, source: Path, name: str, context: str = "training") -> None:
        """``frame`` as the run's input data set ``name`` (MLflow's Datasets: source path, digest, rows, schema)."""
        with warnings.catch_warnings():
            # A local path matches MLflow's local-artifact source twice over; it picks that one, as wanted.
            warnings.filterwarnings("ignore", message="The specified dataset source can be interpreted in multiple ways")
            dataset = mlflow.data.from_pandas(frame, source=str(Path(source).resolve()), name=name)
        entity = DatasetInput(dataset._to_mlflow_entity(), tags=[InputTag("mlflow.data.context", context)])
        self._store.call(f"logging input {name}", self._store.client.log_inputs, self.run_id, datasets=[entity])

    def log_lightgbm_model(
        self, booster: lightgbm.Booster, input_example: pd.DataFrame, registered_name: str = DEFAULT_MODEL_NAME, *,
        model_description: str = "", version_description: str = "",
    ) -> ModelVersionInfo:
        """Log the booster with a signature inferred from ``input_example`` and its predictions, then register
        it as a new version of ``registered_name`` with the descriptions given (the registered model's is
        replaced when not empty); ``ModelNotRegisteredError`` if only the first step worked."""
        signature = mlflow.models.infer_signature(input_example, booster.predict(input_example))
        logged = self._store.call(
            "logging the LightGBM model",
            mlflow.lightgbm.log_model,
            booster,
            name="model",
            signature=signature,
            input_example=input_example,
            # Explicit requirements skip MLflow's inference, which re-imports the model in a subprocess.
            pip_requirements=mlflow.lightgbm.get_default_pip_requirements(),
        )
        not_registered = (
            f"model logged as {logged.model_uri} in run {self.run_id} but not registered as {registered_name!r}"
        )
        try:
            version = self._store.call(f"registering {registered_name}", self._register, logged, registered_name,
                                       model_description, version_description)
        except TrackingUnavailableError as error:
            raise ModelNotRegisteredError(
                f"{not_registered}: {error}",
                tracking_uri=self._store.tracking_uri, model_uri=logged.model_uri, run_id=self.run_id,
            ) from error
        except Exception as error:
            error.add_note(not_registered)
            raise
        number = int(version.version)
        return ModelVersionInfo(registered_name, number, self.run_id, f"models:/{registered_name}/{number}")

    def _register(self, logged: mlflow.models.model.ModelInfo, name: str, model_description: str,
                  version_description: str) -> Any:
        client = self._store.client
        try:
            client.create_registered_model(name, description=model_description or None)
        except MlflowException as error:
            if not has_code(error, RESOURCE_ALREADY_EXISTS):
                raise
            if model_description:
                client.update_registered_model(name, description=model_description)
        return client.create_model_version(name, logged.model_uri, run_id=self.run_id, model_id=logged.model_id,
                                           description=version_description or None)

    def _log_batch(self, kind: str, entities: Sequence[Any]) -> None:
        size = _BATCH_LIMITS[kind]
        for start in range(0, len(entities), size):
            chunk = {kind: entities[start : start + size]}
            self._store.call(f"logging {kind}", self._store.client.log_batch, self.run_id, **chunk)


class Tracker(ModelRegistry):
    """One experiment in one tracking store, and the model registry of the same store (``ModelRegistry``)."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str = "nbm",
        *,
        artifact_location: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
        description: str = "",
    ) -> None:
        super().__init__(Store(tracking_uri, retry))
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        # Used only when the experiment is created: an existing experiment keeps its location.
        self.artifact_location = artifact_location or default_artifact_location(tracking_uri)
        self.retry = retry
        self.description = description  # the experiment's, set when it has none
        self._experiment_id: str | None = None

    @contextmanager
    def run(self, run_name: str) -> Iterator[RunHandle]:
        """A run that ends FINISHED, or FAILED (KILLED on Ctrl-C) when the block raises; the error is re-raised."""
        experiment_id = self._ensure_experiment()
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)
        action = f"starting run {run_name!r}"
        started = self._store.call(action, mlflow.start_run, experiment_id=experiment_id, run_name=run_name)
        handle = RunHandle(started.info.run_id, self._store)
        try:
            yield handle
        except BaseException as error:
            status = "KILLED" if isinstance(error, KeyboardInterrupt) else "FAILED"
            try:
                self._store.call(f"ending run as {status}", self._end_run, handle.run_id, status)
            except TrackingUnavailableError as end_error:  # the block's error matters more: note, re-raise it
                error.add_note(f"MLflow run {handle.run_id} could not be marked {status}: {end_error}")
            raise
        self._store.call("ending run", self._end_run, handle.run_id, "FINISHED")

    def _ensure_experiment(self) -> str:
        if self._experiment_id is None:
            client, name = self._store.client, self.experiment
            found = self._store.call(f"finding experiment {name!r}", client.get_experiment_by_name, name)
            if found is not None:
                self._experiment_id = found.experiment_id
            else:
                location = self.artifact_location
                create = client.create_experiment
                self._experiment_id = self._store.call(f"creating experiment {name!r}", create, name, location)
                found = None
            self._set_up_as_model_training(self._experiment_id, {} if found is None else found.tags)
        return self._experiment_id

    def _set_up_as_model_training(self, experiment_id: str, tags: Mapping[str, str]) -> None:
        """The experiment type MLflow's UI shows as model training, and the description, where still unset
        (an experiment a person has described keeps its text)."""
        wanted = {EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND, DESCRIPTION_TAG: tag_value(self.description)}
        for key, value in wanted.items():
            if value and key not in tags:
                tag = self._store.client.set_experiment_tag
                self._store.call(f"tagging experiment {self.experiment!r}", tag, experiment_id, key, value)

    def _end_run(self, run_id: str, status: str) -> None:
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(status)  # pops MLflow's active-run stack, then marks the run
        else:  # a retry after the pop: only the marking is left
            self._store.client.set_terminated(run_id, status)
