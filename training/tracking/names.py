"""The keys MLflow accepts for nbm's metrics, params and tags, and where a run keeps things. Pure: no mlflow import."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

BUNDLE_ARTIFACT_PATH = "bundle"  # the run's copy of the bundle serving needs (engine/model/bundle.py)
# MLflow refuses '@' in metric names ("ndcg@3"); the original name is kept in a run tag under this prefix.
METRIC_NAME_TAG_PREFIX = "nbm.metric_name."
PARAM_VALUE_MAX_CHARS = 6000  # mlflow.utils.validation.MAX_PARAM_VAL_LENGTH since MLflow 2 (500 in 1.x)


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
