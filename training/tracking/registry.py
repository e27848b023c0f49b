"""The model registry of one tracking store: the versions ``models:/`` URIs name, the ``champion`` and
``challenger`` aliases, promotion, and the download of a version's bundle."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import RESOURCE_DOES_NOT_EXIST

from engine.errors import ConfigError
from training.gate import GateDecision
from training.tracking.errors import ModelNotFoundError
from training.tracking.names import BUNDLE_ARTIFACT_PATH, logged_name
from training.tracking.store import Store, has_code, sqlite_file

DEFAULT_MODEL_NAME = "nbm-ranker"
CHAMPION_ALIAS = "champion"
CHALLENGER_ALIAS = "challenger"
GATE_REASON_TAG = "nbm.gate"
_MODEL_URI = re.compile(r"models:/(?P<name>[^/@]+)(?:@(?P<alias>[^/@]+)|/(?P<version>[1-9][0-9]*))")


def parse_model_uri(model_uri: str) -> tuple[str, str | None, int | None]:
    """``models:/<name>@<alias>`` -> (name, alias, None); ``models:/<name>/<version>`` -> (name, None, version)."""
    match = _MODEL_URI.fullmatch(model_uri)
    if match is None:
        raise ConfigError(f"model URI {model_uri!r}: expected models:/<name>@<alias> or models:/<name>/<version>, "
                          f"e.g. models:/{DEFAULT_MODEL_NAME}@{CHAMPION_ALIAS}")
    version = match["version"]
    return match["name"], match["alias"], None if version is None else int(version)


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


class ModelRegistry:
    """Reads and moves the registered models of the store; ``Tracker`` is one, with runs on top."""

    def __init__(self, store: Store) -> None:
        self._store = store

    def champion(self, name: str = DEFAULT_MODEL_NAME) -> ChampionInfo | None:
        """The version behind the ``champion`` alias and its run's metrics; None if there is none yet."""
        client = self._store.client
        try:
            registered = self._store.call(f"reading registered model {name}", client.get_registered_model, name)
        except MlflowException as error:
            if has_code(error, RESOURCE_DOES_NOT_EXIST):
                return None
            raise
        # Read the alias off the model: asking for a missing alias fails with INVALID_PARAMETER_VALUE (sqlite),
        # a code that also means a malformed request.
        if CHAMPION_ALIAS not in registered.aliases:
            return None
        number = int(registered.aliases[CHAMPION_ALIAS])  # an int from sqlite, a string over REST
        version = self._store.call(f"reading {name} version {number}", client.get_model_version, name, str(number))
        run = self._store.call(f"reading run {version.run_id}", client.get_run, version.run_id)
        metrics = {logged_name(key): value for key, value in run.data.metrics.items()}
        return ChampionInfo(name, number, version.run_id, metrics, f"models:/{name}/{number}")

    def model_version(self, model_uri: str) -> ModelVersionInfo:
        """The version and run behind ``models:/<name>@<alias>`` or ``models:/<name>/<version>``."""
        name, alias, number = parse_model_uri(model_uri)
        tracking_uri = self._store.tracking_uri
        if (database := sqlite_file(tracking_uri)) is not None and not database.exists():
            # Not created here: a mistyped path would otherwise leave an empty store behind.
            raise ModelNotFoundError(f"{model_uri}: no tracking store {tracking_uri} (no file {database}); "
                                     "run nbm train first or pass --tracking-uri")
        client = self._store.client
        try:
            registered = self._store.call(f"reading registered model {name}", client.get_registered_model, name)
        except MlflowException as error:
            if has_code(error, RESOURCE_DOES_NOT_EXIST):
                raise ModelNotFoundError(f"{model_uri}: no registered model {name!r} in {tracking_uri}") from None
            raise
        if alias is not None:  # read off the model, as in champion(): a missing alias has an ambiguous error code
            if alias not in registered.aliases:
                known = ", ".join(f"{a} (version {v})" for a, v in sorted(registered.aliases.items())) or "none"
                raise ModelNotFoundError(f"{model_uri}: model {name!r} has no alias {alias!r}; its aliases: {known}")
            number = int(registered.aliases[alias])
        try:
            version = self._store.call(f"reading {name} version {number}", client.get_model_version, name, str(number))
        except MlflowException as error:
            if has_code(error, RESOURCE_DOES_NOT_EXIST):
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
