"""Where the tracking store is and the MLflow client of it, every call retried on connection-type failures."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import urlparse

import mlflow
import requests
import tenacity
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import TEMPORARILY_UNAVAILABLE, ErrorCode

from training.tracking.errors import TrackingUnavailableError

if TYPE_CHECKING:
    from engine.config import Settings

_logger = logging.getLogger(__name__)
_T = TypeVar("_T")

_CONNECTION_ERRORS = (ConnectionError, TimeoutError, requests.exceptions.ConnectionError)


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff on connection-type failures: waits initial, 2x, 4x ..., capped at max."""

    attempts: int = 4
    initial_wait_seconds: float = 0.5
    max_wait_seconds: float = 8.0

    def __post_init__(self) -> None:
        if self.attempts < 1:
            raise ValueError(f"RetryPolicy.attempts must be >= 1, got {self.attempts}")


def default_tracking_uri(settings: Settings) -> str:
    return os.environ.get("MLFLOW_TRACKING_URI") or f"sqlite:///{settings.paths.home / 'mlflow.db'}"


def sqlite_file(tracking_uri: str) -> Path | None:
    parsed = urlparse(tracking_uri)
    database = parsed.path[1:]  # sqlite:///relative.db -> "relative.db", sqlite:////abs.db -> "/abs.db"
    return Path(database) if parsed.scheme == "sqlite" and database not in ("", ":memory:") else None


def default_artifact_location(tracking_uri: str) -> str | None:
    """Beside a sqlite file (MLflow would use ./mlruns in the working directory); else the server decides."""
    database = sqlite_file(tracking_uri)
    return None if database is None else (database.resolve().parent / "artifacts").as_uri()


def has_code(error: MlflowException, code: int) -> bool:
    return error.error_code == ErrorCode.Name(code)


def _is_connection_error(error: BaseException) -> bool:
    """Worth retrying: the store is unreachable or busy, as opposed to a refused or invalid request."""
    if isinstance(error, _CONNECTION_ERRORS):
        return True
    if not isinstance(error, MlflowException):
        return False
    if has_code(error, TEMPORARILY_UNAVAILABLE):  # e.g. sqlite "database is locked"
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


class Store:
    """The MLflow client of one tracking URI, reached only through the retry policy."""

    def __init__(self, tracking_uri: str, policy: RetryPolicy) -> None:
        self.tracking_uri = tracking_uri
        self.policy = policy
        self._client: mlflow.MlflowClient | None = None

    @property
    def client(self) -> mlflow.MlflowClient:
        if self._client is None:
            if (database := sqlite_file(self.tracking_uri)) is not None:
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
