"""``nbm serve --model-uri``: a registered model version as a local model dir serving can run.

``nbm train`` logs each bundle to its MLflow run under ``bundle/``. The URI is resolved to a version and
its run, whose bundle is downloaded once into ``<home>/served/<name>-v<version>/`` and published there
like any bundle (temporary folder, rename, ``current`` symlink), so a crash never leaves half a bundle.

Following an alias (``models:/<name>@<alias>`` with ``[serving] reload_poll_seconds``): the model dir is
``<home>/served/<name>@<alias>/`` and an :class:`AliasFollower` re-reads the alias at that interval; the
bundle of a newly aliased version is published there and made ``current``, which the server's model
poller then loads between requests. Moving the alias back to an earlier version rolls back the same way.
"""

from __future__ import annotations

import logging
import os
import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from engine.config import Settings
from engine.model.bundle import CURRENT, BundleError, missing_files, publish, set_current
from training.tracking import ModelVersionInfo, Tracker, default_tracking_uri
from training.tracking.registry import parse_model_uri

_log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServedModel:
    model_dir: Path
    version: ModelVersionInfo
    downloaded: bool  # False: the bundle was already there from an earlier nbm serve


def alias_dir(settings: Settings, model_uri: str) -> Path | None:
    """Where a followed alias is served from (``<home>/served/<name>@<alias>``); None for a version URI."""
    name, alias, _ = parse_model_uri(model_uri)
    return None if alias is None else settings.paths.home / "served" / f"{name}@{alias}"


def fetch_served_model(settings: Settings, model_uri: str, *, tracking_uri: str | None = None,
                       model_dir: Path | None = None) -> ServedModel:
    """The local model dir holding the bundle of ``models:/<name>@<alias>`` or ``models:/<name>/<version>``
    as ``current`` (``model_dir``, or one per version under ``<home>/served/``).

    ModelNotFoundError (exit 2) for an unknown model, alias or version or a run without a bundle;
    TrackingUnavailableError (exit 1) if the store cannot be reached.
    """
    tracker = Tracker(tracking_uri or default_tracking_uri(settings))
    version = tracker.model_version(model_uri)
    if model_dir is None:
        model_dir = settings.paths.home / "served" / f"{version.name}-v{version.version}"
    # Named after the run: a version number reused by another tracking store never picks up a stale copy.
    name = f"bundle-{version.run_id}"
    if (model_dir / name).is_dir() and not missing_files(model_dir / name):
        current = model_dir / CURRENT
        # The alias follower gets here on every poll: the symlink is only rewritten when it moves.
        if not current.is_symlink() or os.readlink(current) != name:
            set_current(model_dir, name)
        return ServedModel(model_dir, version, downloaded=False)
    shutil.rmtree(model_dir / name, ignore_errors=True)  # only a damaged copy gets here: publish renames whole ones

    def download(folder: Path) -> None:
        tracker.download_bundle(version, folder)
        if missing := missing_files(folder):
            raise BundleError(f"{model_uri}: the bundle logged to run {version.run_id} is incomplete, "
                              f"missing {', '.join(missing)}")

    publish(model_dir, download, name)
    return ServedModel(model_dir, version, downloaded=True)


class AliasFollower:
    """Keeps ``model_dir`` on the version an alias names: :meth:`check` every ``seconds`` in a daemon thread.

    A failed check (store unreachable after the tracker's retries, a run without a bundle) is logged and
    tried again at the next interval; the model served meanwhile stays as it is.
    """

    def __init__(self, settings: Settings, model_uri: str, model_dir: Path, seconds: float, *,
                 tracking_uri: str | None = None) -> None:
        self.settings, self.model_uri, self.model_dir = settings, model_uri, Path(model_dir)
        self.seconds, self.tracking_uri = float(seconds), tracking_uri
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nbm-alias-follower", daemon=True)

    def check(self) -> ServedModel:
        """Publish the aliased version's bundle into ``model_dir`` if it is new there, make it current."""
        return fetch_served_model(self.settings, self.model_uri, tracking_uri=self.tracking_uri, model_dir=self.model_dir)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.ident is not None:  # started
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                served = self.check()
                if served.downloaded:
                    _log.info("%s now names version %d (run %s): published into %s", self.model_uri,
                              served.version.version, served.version.run_id, self.model_dir)
            except Exception as exc:  # noqa: BLE001 - the follower must outlive any one failure
                _log.error("following %s: %s: %s", self.model_uri, type(exc).__name__, exc)
