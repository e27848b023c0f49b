"""The keys MLflow accepts for nbm's metrics, params and tags, and where a run keeps things. Pure: no mlflow import."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

BUNDLE_ARTIFACT_PATH = "bundle"  # the run's copy of the bundle serving needs (engine/model/bundle.py)
PARAM_VALUE_MAX_CHARS = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH since MLflow 2 (500 in 1.x)
TAG_VALUE_MAX_CHARS = 8000  # mlflow.utils.validation.MAX_TAG_VAL_LENGTH (MLflow 2 and 3)
DESCRIPTION_TAG = "mlflow.note.content"  # the description MLflow's UI shows on a run or experiment page
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"  # the experiment type MLflow 3's UI reads ...
MODEL_TRAINING_KIND = "custom_model_development"  # ... this value is its "machine learning" (model training) type


def mlflow_name(name: str) -> str:
    """The key MLflow accepts for a metric, param or tag: '@' -> '_at_', other refused characters -> '_'.

    Colons become '_' too: MLflow accepts them except on Windows.
    """
    return re.sub(r"[^/\w.\- ]", "_", name.replace("@", "_at_"))


def logged_name(key: str) -> str:
    """The metric name a key read back from MLflow was logged under: ``mlflow_name``'s '@' rule undone
    (nbm's own metric names use no other character MLflow refuses)."""
    return key.replace("_at_", "@")


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, str]:
    """Nested config sections become ``section.key``; values are stringified and truncated visibly."""
    flat: dict[str, str] = {}
    for key, value in params.items():
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, prefix=f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = _truncated(str(value))
    return flat


def tag_value(value: str) -> str:
    """``value`` cut visibly to the length MLflow accepts for a tag (a run's description is one)."""
    return _truncated(value, TAG_VALUE_MAX_CHARS)


def _truncated(value: str, limit: int = PARAM_VALUE_MAX_CHARS) -> str:
    if len(value) <= limit:
        return value
    marker = f"...[truncated {len(value)} chars]"
    return value[: limit - len(marker)] + marker
