"""The API's settings: the ``[serving]`` section plus the two key variables the issue names.

``NBM_API_KEYS`` and ``NBM_ADMIN_KEYS`` (comma-separated) win over ``[serving] api_keys`` / ``admin_keys``
in the file. Nothing here runs at import time: :func:`serving_settings` is called by ``create_app``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import ValidationError

from engine.config import ServingSettings, Settings
from engine.errors import ConfigError

API_KEYS_ENV = "NBM_API_KEYS"
ADMIN_KEYS_ENV = "NBM_ADMIN_KEYS"
_KEY_VARIABLES = {"api_keys": API_KEYS_ENV, "admin_keys": ADMIN_KEYS_ENV}


def serving_settings(settings: Settings, environ: Mapping[str, str] | None = None) -> ServingSettings:
    """``settings.serving`` with the keys of ``NBM_API_KEYS`` / ``NBM_ADMIN_KEYS`` when those are set and
    not blank. Raises :class:`ConfigError` naming the variable (never the key) if a key is unusable."""
    environ = os.environ if environ is None else environ
    section = settings.serving
    for field, variable in _KEY_VARIABLES.items():
        keys = [k.strip() for k in environ.get(variable, "").split(",") if k.strip()]
        if not keys:
            continue
        try:
            section = ServingSettings.model_validate({**section.model_dump(), field: keys})
        except ValidationError as exc:
            problems = "; ".join(err["msg"].removeprefix("Value error, ") for err in exc.errors())
            raise ConfigError(f"{variable}: {problems}") from None
    return section


def model_dir_of(settings: Settings, serving: ServingSettings) -> Path:
    """Where the API loads bundles from: ``[serving] model_dir``, else ``<paths.home>/model``."""
    return serving.model_dir if serving.model_dir is not None else settings.paths.home / "model"
