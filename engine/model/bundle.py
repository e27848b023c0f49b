"""The model bundle: everything serving and ``nbm score`` need, published atomically.

Layout of a model directory::

    model-dir/
      current -> bundle-20260630T000000Z-1a2b3c   (a symlink, swapped atomically)
      bundle-.../  model.txt, spec.json, metadata.json, messages.parquet, customers.parquet,
                   state.parquet, snapshot.parquet, and model.so + model.target.json (the model
                   compiled by lleaves for the training machine's CPU, optional: compiled.py),
                   evaluation_model.txt (optional: the model fitted on the train split alone, when
                   model.txt was refit on all data; later runs compare with it on their test window)

A bundle is written into a hidden temporary folder, flushed to disk, renamed into place and only then
made ``current`` by replacing the symlink: a crash at any point leaves the previous bundle current and
whole. Older bundles are kept (the last ``KEEP_BUNDLES``) for rollback.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import lightgbm as lgb
import pandas as pd

from engine.contract.plain_records import message_catalog
from engine.durable import fsync_directory
from engine.errors import NbmError
from engine.features.spec import FeatureSpec
from engine.features.state import FeatureState
from engine.model.compiled import Predictor, compile_into, load_predictor

CURRENT = "current"
KEEP_BUNDLES = 3
BUNDLE_FORMAT = 1
EVALUATION_MODEL = "evaluation_model.txt"
_FILES = ("model.txt", "spec.json", "metadata.json", "messages.parquet", "customers.parquet", "state.parquet", "snapshot.parquet")


class BundleError(NbmError):
    """A model directory or bundle is missing, incomplete or of another format."""


@dataclass(frozen=True, eq=False)
class Bundle:
    path: Path
    booster: lgb.Booster
    spec: FeatureSpec
    feature_names: tuple[str, ...]
    messages: pd.DataFrame
    customers: pd.DataFrame
    state: FeatureState
    snapshot: pd.DataFrame
    metadata: dict

    @property
    def version(self) -> str:
        return str(self.metadata.get("model_version", self.path.name))

    @cached_property
    def evaluation_booster(self) -> lgb.Booster:
        """The model that saw no data after its own train split: the served one unless it was refit on
        all data. A later run compares with this one on its test window, which the refit model has seen."""
        path = self.path / EVALUATION_MODEL
        return lgb.Booster(model_file=str(path)) if path.is_file() else self.booster

    @cached_property
    def predictor(self) -> Predictor:
        """The model for online decisions, compiled when it can be (compiled.py); made on first use, so
        that training and batch scoring, which predict with the booster, never compile it."""
        return load_predictor(self.path, self.booster)

    @cached_property
    def split_features(self) -> frozenset[str]:
        """The features some tree of the model splits on: the only ones its scores (and its per-feature
        contributions, zero for the others) depend on."""
        used = self.booster.feature_importance(importance_type="split") > 0
        # By position, in the matrix's names: LightGBM's own names may differ (it rewrites some characters).
        return frozenset(name for name, split in zip(self.feature_names, used, strict=True) if split)

    @cached_property
    def message_lookup(self) -> dict[str, tuple[str, str]]:
        """message_id -> (channel, topic): what live events are checked against, read once per bundle."""
        return message_catalog(self.messages)


def write_bundle(
    model_dir: Path,
    *,
    booster: lgb.Booster,
    spec: FeatureSpec,
    feature_names: tuple[str, ...],
    messages: pd.DataFrame,
    customers: pd.DataFrame,
    state: FeatureState,
    snapshot: pd.DataFrame,
    metadata: dict,
    name: str,
    make_current: bool = True,
    evaluation_booster: lgb.Booster | None = None,
) -> Path:
    """Write a complete bundle (and make it current unless told not to); returns its path.
    ``evaluation_booster``: the evaluated model, when ``booster`` was refit on more data."""

    def write(folder: Path) -> None:
        booster.save_model(str(folder / "model.txt"))
        if evaluation_booster is not None:
            evaluation_booster.save_model(str(folder / EVALUATION_MODEL))
        compile_into(folder, "model.txt")
        (folder / "spec.json").write_text(json.dumps({**spec.to_dict(), "feature_names": list(feature_names)}, indent=2))
        (folder / "metadata.json").write_text(json.dumps({"bundle_format": BUNDLE_FORMAT, **metadata}, indent=2, default=str))
        messages.to_parquet(folder / "messages.parquet", index=False)
        customers.to_parquet(folder / "customers.parquet", index=False)
        state.save(folder / "state.parquet")
        snapshot.to_parquet(folder / "snapshot.parquet", index=False)

    return publish(model_dir, write, name, make_current=make_current)


def publish(model_dir: Path, write: Callable[[Path], None], name: str, *, make_current: bool = True) -> Path:
    """Run ``write`` into a temporary folder, then rename it to ``name`` and point ``current`` at it
    (a challenger is published without becoming current)."""
    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(model_dir)
    temporary = model_dir / f".tmp-{uuid.uuid4().hex}"
    temporary.mkdir()
    try:
        write(temporary)
        _fsync_tree(temporary)
        final = model_dir / name
        if final.exists():
            raise BundleError(f"{final}: a bundle of that name exists already")
        os.rename(temporary, final)
    except BaseException:
        shutil.rmtree(temporary, ignore_errors=True)
        raise
    if make_current:
        set_current(model_dir, final.name)
    else:
        fsync_directory(model_dir)
    _prune(model_dir, keep=KEEP_BUNDLES)
    return final


def set_current(model_dir: Path, name: str) -> None:
    """Point ``current`` at the published bundle ``name`` of ``model_dir``."""
    model_dir = Path(model_dir)
    if not (model_dir / name).is_dir():
        raise BundleError(f"{model_dir / name}: no such bundle to make current")
    link = model_dir / f".current-{uuid.uuid4().hex}"
    os.symlink(name, link)
    os.replace(link, model_dir / CURRENT)  # atomic on POSIX: readers see the old or the new bundle
    fsync_directory(model_dir)


def resolve(model_dir: Path) -> Path:
    """The bundle folder a model directory points at (or the folder itself if it is a bundle)."""
    model_dir = Path(model_dir)
    if (model_dir / "metadata.json").is_file():
        return model_dir
    current = model_dir / CURRENT
    if not current.exists():
        raise BundleError(_no_current(model_dir))
    return current.resolve()


def _no_current(model_dir: Path) -> str:
    """Why a model directory has no ``current`` bundle, and what to do: train, or pick a challenger."""
    bundles = sorted(p for p in model_dir.glob("bundle-*") if (p / "metadata.json").is_file()) if model_dir.is_dir() else []
    if not bundles:
        return f"{model_dir}: no model bundle here (no '{CURRENT}'); run nbm train first"
    newest = bundles[-1]
    try:
        gate = json.loads((newest / "metadata.json").read_text()).get("gate", "")
    except (OSError, ValueError):
        gate = ""
    return (f"{model_dir}: no promoted model yet (no '{CURRENT}'): the newest bundle, {newest.name}, is a challenger"
            + (f" ({gate})" if gate else "") + f"; score it with --bundle {newest}, or promote it with nbm train --force-promote")


def missing_files(bundle: Path) -> list[str]:
    """The files of a complete bundle that the folder ``bundle`` lacks (all of them if it does not exist)."""
    return [f for f in _FILES if not (Path(bundle) / f).is_file()]


def load_bundle(model_dir: Path) -> Bundle:
    path = resolve(model_dir)
    if missing := missing_files(path):
        raise BundleError(f"{path}: incomplete bundle, missing {', '.join(missing)}")
    try:
        metadata = json.loads((path / "metadata.json").read_text())
        if metadata.get("bundle_format") != BUNDLE_FORMAT:
            raise BundleError(f"{path}: bundle format {metadata.get('bundle_format')!r}, this nbm reads {BUNDLE_FORMAT}")
        spec_data = json.loads((path / "spec.json").read_text())
        return Bundle(
            path=path,
            booster=lgb.Booster(model_file=str(path / "model.txt")),
            spec=FeatureSpec.from_dict(spec_data),
            feature_names=tuple(spec_data["feature_names"]),
            messages=pd.read_parquet(path / "messages.parquet"),
            customers=pd.read_parquet(path / "customers.parquet"),
            state=FeatureState.load(path / "state.parquet"),
            snapshot=pd.read_parquet(path / "snapshot.parquet"),
            metadata=metadata,
        )
    except BundleError:
        raise
    except (OSError, ValueError, KeyError, lgb.basic.LightGBMError) as exc:
        raise BundleError(f"{path}: cannot load the bundle: {exc}") from None


def _fsync_tree(folder: Path) -> None:
    for path in folder.iterdir():
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
    fsync_directory(folder)




def _remove_leftovers(model_dir: Path) -> None:
    # Temporary folders of a writer that crashed: never current, safe to delete.
    for leftover in model_dir.glob(".tmp-*"):
        shutil.rmtree(leftover, ignore_errors=True)
    for leftover in model_dir.glob(".current-*"):
        leftover.unlink(missing_ok=True)


def _prune(model_dir: Path, keep: int) -> None:
    current = (model_dir / CURRENT).resolve().name if (model_dir / CURRENT).exists() else None
    bundles = sorted((p for p in model_dir.iterdir() if p.is_dir() and p.name.startswith("bundle-") and not p.is_symlink()),
                     key=lambda p: p.name)
    for old in bundles[:-keep]:
        if old.name != current:
            shutil.rmtree(old, ignore_errors=True)
