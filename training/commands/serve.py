"""``nbm serve --model-uri``: a registered model version as a local model dir serving can run.

``nbm train`` logs each bundle to its MLflow run under ``bundle/``. The URI is resolved to a version and
its run, whose bundle is downloaded once into ``<home>/served/<name>-v<version>/`` and published there
like any bundle (temporary folder, rename, ``current`` symlink), so a crash never leaves half a bundle.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path

from engine.config import Settings
from engine.model.bundle import BundleError, missing_files, publish, set_current
from training.tracking import ModelVersionInfo, Tracker, default_tracking_uri


@dataclass(frozen=True)
class ServedModel:
    model_dir: Path
    version: ModelVersionInfo
    downloaded: bool  # False: the bundle was already there from an earlier nbm serve


def fetch_served_model(settings: Settings, model_uri: str, *, tracking_uri: str | None = None) -> ServedModel:
    """The local model dir holding the bundle of ``models:/<name>@<alias>`` or ``models:/<name>/<version>``.

    ModelNotFoundError (exit 2) for an unknown model, alias or version or a run without a bundle;
    TrackingUnavailableError (exit 1) if the store cannot be reached.
    """
    tracker = Tracker(tracking_uri or default_tracking_uri(settings))
    version = tracker.model_version(model_uri)
    model_dir = settings.paths.home / "served" / f"{version.name}-v{version.version}"
    # Named after the run: a version number reused by another tracking store never picks up a stale copy.
    name = f"bundle-{version.run_id}"
    if (model_dir / name).is_dir() and not missing_files(model_dir / name):
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
