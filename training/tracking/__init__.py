"""Everything nbm sends to MLflow or reads back: runs, params, metrics, artifacts (the bundle too), the model,
its registry aliases and the versions ``models:/`` URIs name.

The only package that imports mlflow, split by job: ``names`` (pure: the keys MLflow accepts for metrics,
params and tags), ``store`` (the client of one tracking URI and its retries), ``runs`` (``Tracker`` and what
a run logs) and ``registry`` (model names, ``models:/`` URIs, versions, aliases, promotion, the bundle
download). Every call to the store goes through one ``RetryPolicy`` that retries connection-type failures
only, then raises ``TrackingUnavailableError`` naming the tracking URI; any other MLflow error propagates
unchanged. ``Tracker.run`` points MLflow's process-global fluent API (which ``mlflow.lightgbm.log_model``
needs) at this tracker's store. For http(s) stores MLflow's own HTTP retries (7, minutes of backoff) are off
unless ``MLFLOW_HTTP_REQUEST_MAX_RETRIES`` is set, so ours is the one policy.
"""

from training.tracking.errors import ModelNotFoundError, ModelNotRegisteredError, TrackingUnavailableError
from training.tracking.names import (
    BUNDLE_ARTIFACT_PATH,
    DESCRIPTION_TAG,
    EXPERIMENT_KIND_TAG,
    MODEL_TRAINING_KIND,
    PARAM_VALUE_MAX_CHARS,
    flatten_params,
    mlflow_name,
)
from training.tracking.registry import (
    CHALLENGER_ALIAS,
    CHAMPION_ALIAS,
    DEFAULT_MODEL_NAME,
    GATE_REASON_TAG,
    ChampionInfo,
    ModelRegistry,
    ModelVersionInfo,
    parse_model_uri,
)
from training.tracking.runs import RunHandle, Tracker
from training.tracking.store import RetryPolicy, default_tracking_uri

__all__ = [
    "BUNDLE_ARTIFACT_PATH",
    "CHALLENGER_ALIAS",
    "CHAMPION_ALIAS",
    "DEFAULT_MODEL_NAME",
    "GATE_REASON_TAG",
    "DESCRIPTION_TAG",
    "EXPERIMENT_KIND_TAG",
    "MODEL_TRAINING_KIND",
    "PARAM_VALUE_MAX_CHARS",
    "ChampionInfo",
    "ModelNotFoundError",
    "ModelNotRegisteredError",
    "ModelRegistry",
    "ModelVersionInfo",
    "RetryPolicy",
    "RunHandle",
    "TrackingUnavailableError",
    "Tracker",
    "default_tracking_uri",
    "flatten_params",
    "mlflow_name",
    "parse_model_uri",
]
