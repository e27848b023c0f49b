"""Everything nbm sends to MLflow or reads back: runs, params, metrics, artifacts (the bundle too), the model,
its registry aliases and the versions ``models:/`` URIs name.

The only module that imports mlflow. Every call to the store goes through one ``RetryPolicy`` that retries
connection-type failures only, then raises ``TrackingUnavailableError`` naming the tracking URI; any other
MLflow error propagates unchanged. ``Tracker.run`` points MLflow's process-global fluent API (which
``mlflow.lightgbm.log_model`` needs) at this tracker's store. For http(s) stores MLflow's own HTTP retries
(7, minutes of backoff) are off unless ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` is set, so ours is the one policy.
"""

from __future__ import annotations

import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import mlflow
import mlflow.lightgbm
import requests
import tenacity
from mlflow.entities import Metric, Param, RunTag
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import (
    RESOURCE_ALREADY_EXISTS,
    RESOURCE_DOES_NOT_EXIST,
    TEMPORARILY_UNAVAILABLE,
    ErrorCode,
)

from engine.errors import ConfigError, NbmError
from training.gate import GateDecision

if TYPE_CHECKING:
    import lightgbm
    import pandas as pd
    from matplotlib.figure import Figure

    from engine.config import Settings

_logger = logging.getLogger(__name__)
_T = TypeVar("_T")

DEFAULT_MODEL_NAME = "nbm-ranker"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
GATE_REASON_TAG = "nbm.gate"
BUNDLE_ARTIFACT_PATH = "bundle"  # the run's copy of the bundle serving needs (engine/model/bundle.py)
_MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[1-9][0-9]*))")
# MLflow refuses '@' in metric names ("ndcg@3"); the original name is kept in a run tag under this prefix.
METRIC_NAME_TAG_PREFIX = "nbm.metric_name."
PARAM_VALUE_MAX_CHARS = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH since MLflow 2 (500 in 1.x)
_BATCH_LIMITS = {"params": 100, "tags": 100, "metrics": 1000}  # per log_batch request
_CONNECTION_ERRORS = (ConnectionError, TimeoutError, requests.exceptions.ConnectionError)


class TrackingUnavailableError(NbmError):
    """The tracking store could not be reached after every retry."""

    def __init__(self, message: str, *, tracking_uri: str) -> None:
        self.tracking_uri = tracking_uri
        super().__init__(message)


class ModelNotRegisteredError(TrackingUnavailableError):
    """The model was logged to its run (``model_uri``) but no registry version was created.

    State left behind: the run holds the logged model and its artifacts; the registered model may exist
    (it is created before the version) without a version for this run; no alias moved.
    """

    def __init__(self, message: str, *, tracking_uri: str, model_uri: str, run_id: str) -> None:
        self.model_uri = model_uri
        self.run_id = run_id
        super().__init__(message, tracking_uri=tracking_uri)


class ModelNotFoundError(NbmError):
    """A ``models:/`` URI names no registered model, alias or version, or a version whose run has no bundle."""


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff on connection-type failures: waits initial, 2x, 4x ..., capped at max."""

    attempts: int = 4
    initial_wait_seconds: float = 0.5
    max_wait_seconds: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")


@dataclass(frozen=True)
class ModelVersionInfo:
    name: str
    version: int
    run_id: str
    model_uri: str  # models:/<name>/<version>


@dataclass(frozen=True)
class ChampionInfo:
    name: str
    version: int
    run_id: str
    metrics: dict[str, float]  # the run's metrics under the names they were logged with (e.g. "ndcg@3")
    model_uri: str


def default_tracking_uri(settings: Settings) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{settings.paths.home / 'mlflow.db'}"


def parse_model_uri(model_uri: str) -> tuple[str, str | None, int | None]:
    """``models:/<name>@<alias>`` -> (name, alias, None); ``models:/<name>/<version>`` -> (name, None, version)."""
    match = _MODEL_URI.fullmatch(model_uri)
    if match is None:
        raise ConfigError(f"model URI {model_uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>, "
                          f"e.g. models:/{DEFAULT_MODEL_NAME}@{CHAMPION_ALIAS}")
    version = match["version"]
    return match["name"], match["alias"], None if version is None else int(version)


def mlflow_name(name: str) -> str:
    """The key MLflow accepts for a metric, param or tag: '@' -> '_at_', other refused characters -> '_'.

    Colons become '_' too: MLflow accepts them except on Windows.
    """
    return re.sub(r"[^/\w.\- ]", "_", name.replace("@", "_at_"))


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config sections become ``section.key``; values are stringified and truncated visibly."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = _truncated(str(value))
    return flat


def _truncated(value: str) -> str:
    if len(value) <= PARAM_VALUE_MAX_CHARS:
        return value
    marker = f"...[truncated {len(value)} chars]"
    return value[: PARAM_VALUE_MAX_CHARS - len(marker)] + marker


def _is_connection_error(error: BaseException) -> bool:
    """Worth retrying: the store is unreachable or busy, as opposed to a refused or invalid request."""
    if isinstance(error, _CONNECTION_ERRORS):
        return True
    if not isinstance(error, MlflowException):
        return False
    if _has_code(error, TEMPORARILY_UNAVAILABLE):  # e.g. sqlite "database is locked"
        return True
    # MLflow's REST client wraps the requests error without ``from``: follow the implicit chain.
    cause = error.__cause__ or error.__context__
    for _ in range(10):  # bounded: a chain can loop
        if cause is None:
            return False
        if isinstance(cause, _CONNECTION_ERRORS):
            return True
        cause = cause.__cause__ or cause.__context__
    return False


def _has_code(error: MlflowException, code: int) -> bool:
    return error.error_code == ErrorCode.Name(code)


def _sqlite_file(tracking_uri: str) -> Path | None:
    parsed = urlparse(tracking_uri)
    database = parsed.path[1:]  # sqlite:///relative.db -> "relative.db", sqlite:////abs.db -> "/abs.db"
    return Path(database) if parsed.scheme == "sqlite" and database not in ("", ":memory:") else None


def _default_artifact_location(tracking_uri: str) -> str | None:
    """Beside a sqlite file (MLflow would use ./mlruns in the working directory); else the server decides."""
    database = _sqlite_file(tracking_uri)
    return None if database is None else (database.resolve().parent / "artifacts").as_uri()


class _Store:
    """The MLflow client of one tracking URI, reached only through the retry policy."""

    def __init__(self, tracking_uri: str, policy: RetryPolicy) -> None:
        self.tracking_uri = tracking_uri
        self.policy = policy
        self._client: mlflow.MlflowClient | None = None

    @property
    def client(self) -> mlflow.MlflowClient:
        if self._client is None:
            if (database := _sqlite_file(self.tracking_uri)) is not None:
                database.parent.mkdir(parents=True, exist_ok=True)
            if urlparse(self.tracking_uri).scheme in ("http", "https"):
                os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "0")
            # Opening a sqlite store creates or migrates its schema: a store call like any other.
            uri = self.tracking_uri
            self._client = self.call("opening the store", mlflow.MlflowClient, tracking_uri=uri, registry_uri=uri)
        return self._client

    def call(self, action: str, function: Callable[..., _T], *args: Any, **kwargs: Any) -> _T:
        policy = self.policy
        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(policy.attempts),
            wait=tenacity.wait_exponential(multiplier=policy.initial_wait_seconds, max=policy.max_wait_seconds),
            retry=tenacity.retry_if_exception(_is_connection_error),
            before_sleep=lambda state: _logger.warning(
                "MLflow store %s: %s failed (attempt %d of %d), retrying: %s",
                self.tracking_uri, action, state.attempt_number, policy.attempts, state.outcome.exception(),
            ),
            reraise=True,
        )
        try:
            return retrying(function, *args, **kwargs)
        except Exception as error:
            if not _is_connection_error(error):
                raise
            raise TrackingUnavailableError(
                f"MLflow tracking store {self.tracking_uri} is unavailable: {action} failed {policy.attempts} "
                f"time(s); last error: {type(error).__name__}: {error}",
                tracking_uri=self.tracking_uri,
            ) from error


class RunHandle:
    """What the training pipeline logs into one MLflow run."""

    def __init__(self, run_id: str, store: _Store) -> None:
        self.run_id = run_id
        self._store = store

    def log_params(self, params: Mapping[str, Any]) -> None:
        self._log_batch("params", [Param(mlflow_name(key), value) for key, value in flatten_params(params).items()])

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        """A NaN is logged as NaN (MLflow stores it) with a warning; renamed keys keep their name in a tag."""
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
        names = [RunTag(METRIC_NAME_TAG_PREFIX + key, name) for key, name in original_names.items() if key != name]
        self._log_batch("tags", names)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self._log_batch("tags", [RunTag(mlflow_name(key), str(value)) for key, value in tags.items()])

    def log_dict(self, obj: Mapping[str, Any], artifact_file: str) -> None:
        """JSON, or YAML when ``artifact_file`` ends in .yaml/.yml."""
        self._store.call(f"logging {artifact_file}", self._store.client.log_dict, self.run_id, dict(obj), artifact_file)

    def log_text(self, text: str, artifact_file: str) -> None:
        self._store.call(f"logging {artifact_file}", self._store.client.log_text, self.run_id, text, artifact_file)

    def log_figure(self, figure: Figure, artifact_file: str) -> None:
        self._store.call(f"logging {artifact_file}", self._store.client.log_figure, self.run_id, figure, artifact_file)

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
        """The frame as CSV at ``artifact_file`` (e.g. ``eval/by_segment.csv``), without its index."""
        target = PurePosixPath(artifact_file)
        with tempfile.TemporaryDirectory(prefix="nbm-table-") as scratch:
            frame.to_csv(Path(scratch) / target.name, index=False)
            self.log_artifact(Path(scratch) / target.name, None if str(target.parent) == "." else str(target.parent))

    def log_lightgbm_model(
        self, booster: lightgbm.Booster, input_example: pd.DataFrame, registered_name: str = DEFAULT_MODEL_NAME
    ) -> ModelVersionInfo:
        """Log the booster with a signature inferred from ``input_example`` and its predictions, then register
        it as a new version of ``registered_name``; ``ModelNotRegisteredError`` if only the first step worked."""
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
            version = self._store.call(f"registering {registered_name}", self._register, logged, registered_name)
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

    def _register(self, logged: mlflow.models.model.ModelInfo, name: str) -> Any:
        client = self._store.client
        try:
            client.create_registered_model(name)
        except MlflowException as error:
            if not _has_code(error, RESOURCE_ALREADY_EXISTS):
                raise
        return client.create_model_version(name, logged.model_uri, run_id=self.run_id, model_id=logged.model_id)

    def _log_batch(self, kind: str, entities: Sequence[Any]) -> None:
        size = _BATCH_LIMITS[kind]
        for start in range(0, len(entities), size):
            chunk = {kind: entities[start : start + size]}
            self._store.call(f"logging {kind}", self._store.client.log_batch, self.run_id, **chunk)


class Tracker:
    """One experiment in one tracking store, and the model registry of the same store."""

    def __init__(
        self,
        tracking_uri: str,
        experiment: str = "nbm",
        *,
        artifact_location: str | None = None,
        retry: RetryPolicy = RetryPolicy(),
    ) -> None:
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        # Used only when the experiment is created: an existing experiment keeps its location.
        self.artifact_location = artifact_location or _default_artifact_location(tracking_uri)
        self.retry = retry
        self._store = _Store(tracking_uri, retry)
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

    def champion(self, name: str = DEFAULT_MODEL_NAME) -> ChampionInfo | None:
        """The version behind the ``champion`` alias and its run's metrics; None if there is none yet."""
        client = self._store.client
        try:
            registered = self._store.call(f"reading registered model {name}", client.get_registered_model, name)
        except MlflowException as error:
            if _has_code(error, RESOURCE_DOES_NOT_EXIST):
                return None
            raise
        # Read the alias off the model: asking for a missing alias fails with INVALID_PARAMETER_VALUE (sqlite),
        # a code that also means a malformed request.
        if CHAMPION_ALIAS not in registered.aliases:
            return None
        number = int(registered.aliases[CHAMPION_ALIAS])  # an int from sqlite, a string over REST
        version = self._store.call(f"reading {name} version {number}", client.get_model_version, name, str(number))
        run = self._store.call(f"reading run {version.run_id}", client.get_run, version.run_id)
        tags = run.data.tags
        metrics = {tags.get(METRIC_NAME_TAG_PREFIX + key, key): value for key, value in run.data.metrics.items()}
        return ChampionInfo(name, number, version.run_id, metrics, f"models:/{name}/{number}")

    def model_version(self, model_uri: str) -> ModelVersionInfo:
        """The version and run behind ``models:/<name>@<alias>`` or ``models:/<name>/<version>``."""
        name, alias, number = parse_model_uri(model_uri)
        if (database := _sqlite_file(self.tracking_uri)) is not None and not database.exists():
            # Not created here: a mistyped path would otherwise leave an empty store behind.
            raise ModelNotFoundError(f"{model_uri}: no tracking store {self.tracking_uri} (no file {database}); "
                                     "run nbm train first or pass --tracking-uri")
        client = self._store.client
        try:
            registered = self._store.call(f"reading registered model {name}", client.get_registered_model, name)
        except MlflowException as error:
            if _has_code(error, RESOURCE_DOES_NOT_EXIST):
                raise ModelNotFoundError(f"{model_uri}: no registered model {name!r} in {self.tracking_uri}") from None
            raise
        if alias is not None:  # read off the model, as in champion(): a missing alias has an ambiguous error code
            if alias not in registered.aliases:
                known = ", ".join(f"{a} (version {v})" for a, v in sorted(registered.aliases.items())) or "none"
                raise ModelNotFoundError(f"{model_uri}: model {name!r} has no alias {alias!r}; its aliases: {known}")
            number = int(registered.aliases[alias])
        try:
            version = self._store.call(f"reading {name} version {number}", client.get_model_version, name, str(number))
        except MlflowException as error:
            if _has_code(error, RESOURCE_DOES_NOT_EXIST):
                raise ModelNotFoundError(f"{model_uri}: model {name!r} has no version {number}") from None
            raise
        if not version.run_id:
            raise ModelNotFoundError(f"{model_uri}: {name} version {number} was not logged from a run: it has no bundle")
        return ModelVersionInfo(name, number, version.run_id, f"models:/{name}/{number}")

    def download_bundle(self, version: ModelVersionInfo, folder: Path) -> None:
        """The bundle files the version's run logged under ``bundle/``, written into ``folder`` (flat)."""
        client, run_id = self._store.client, version.run_id
        listed = self._store.call(f"listing the bundle of run {run_id}", client.list_artifacts, run_id, BUNDLE_ARTIFACT_PATH)
        if not listed:
            raise ModelNotFoundError(
                f"{version.model_uri}: run {run_id} holds no {BUNDLE_ARTIFACT_PATH}/ artifacts (trained before nbm train "
                "logged its bundle to MLflow?); retrain, or serve its local bundle with --model-dir"
            )
        action = f"downloading the bundle of run {run_id}"
        downloaded = Path(self._store.call(action, client.download_artifacts, run_id, BUNDLE_ARTIFACT_PATH, str(folder)))
        for path in list(downloaded.iterdir()):
            path.rename(folder / path.name)
        downloaded.rmdir()

    def set_alias(self, name: str, alias: str, version: int) -> None:
        client = self._store.client
        action = f"pointing {name}@{alias} at version {version}"
        self._store.call(action, client.set_registered_model_alias, name, alias, str(version))

    def promote(self, name: str, version: int, decision: GateDecision) -> str:
        """Record the gate's reason on the version, then point ``champion`` (or ``challenger``) at it."""
        alias = CHAMPION_ALIAS if decision.promote else CHALLENGER_ALIAS
        client = self._store.client
        # Tag first: a reason without an alias is harmless, an alias without its reason is not.
        action = f"tagging {name} version {version}"
        self._store.call(action, client.set_model_version_tag, name, str(version), GATE_REASON_TAG, decision.reason)
        self.set_alias(name, alias, version)
        return alias

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
        return self._experiment_id

    def _end_run(self, run_id: str, status: str) -> None:
        active = mlflow.active_run()
        if active is not None and active.info.run_id == run_id:
            mlflow.end_run(status)  # pops MLflow's active-run stack, then marks the run
        else:  # a retry after the pop: only the marking is left
            self._store.client.set_terminated(run_id, status)
