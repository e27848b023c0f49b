"""The model being served, swapped atomically between requests.

A request takes one reference (:meth:`ModelHolder.current`) and uses it to the end, so a reload never
changes the model under a running decision. Loads are serialised by a lock and happen beside serving: the
old engine answers until the new one is complete. A failed load keeps the last good model and is kept as
``last_error`` for ``/readyz`` and the logs.
"""

from __future__ import annotations

import gc

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from engine.errors import NbmError
from engine.model.bundle import Bundle, load_bundle, resolve
from serving.logs import LOGGER
from serving.metrics import Metrics

_log = logging.getLogger(LOGGER)

EngineFactory = Callable[[Bundle], Any]  # a DecisionEngine from a bundle


@dataclass(frozen=True, eq=False)
class LoadedModel:
    bundle: Bundle
    engine: Any  # engine.policy.online.DecisionEngine
    model_dir: Path
    loaded_at: pd.Timestamp

    @property
    def version(self) -> str:
        return str(self.engine.model_version)


class ReloadError(NbmError):
    """A model could not be loaded; the previous one (if any) keeps serving."""

    def __init__(self, message: str, *, internal: bool) -> None:
        self.internal = internal  # not an NbmError underneath: a bug, details only in the log
        super().__init__(message)


class ModelHolder:
    def __init__(self, model_dir: Path, build: EngineFactory, metrics: Metrics,
                 clock: Callable[[], pd.Timestamp], load: Callable[[Path], Bundle] = load_bundle) -> None:
        self.model_dir = Path(model_dir)
        self._build = build
        self._load = load
        self._metrics = metrics
        self._clock = clock
        self._lock = threading.Lock()
        self._loaded: LoadedModel | None = None
        self.last_error: str | None = None
        self._failed_target: Path | None = None

    def current(self) -> LoadedModel | None:
        return self._loaded  # one attribute read: atomic, so readers never see half a swap

    def reload(self, model_dir: Path | None = None) -> LoadedModel:
        """Load the bundle ``model_dir`` (default: the holder's) points at and serve it from now on.

        On success a given ``model_dir`` becomes the holder's. Raises :class:`ReloadError` otherwise,
        leaving the previous model serving.
        """
        target = Path(model_dir) if model_dir is not None else self.model_dir
        with self._lock:
            try:
                bundle = self._load(target)
                loaded = LoadedModel(bundle, self._build(bundle), target, self._clock())
            except NbmError as exc:
                raise self._failed(target, str(exc), internal=False) from exc
            except Exception as exc:  # noqa: BLE001 - a bug in loading must not take serving down
                _log.exception("model load from %s failed", target)
                raise self._failed(target, f"internal error while loading {target}: {type(exc).__name__}", internal=True) from exc
            previous = self._loaded
            self._loaded = loaded
            self.model_dir = target
            self.last_error = None
            self._failed_target = None
        # The loaded model is long-lived: move it out of the garbage collector's generations, so that
        # full collections stop rescanning it (a source of latency spikes). Unfreezing first lets the
        # previous model, frozen at its own load, be collected now.
        gc.unfreeze()
        gc.collect()
        gc.freeze()
        self._metrics.reloads.labels(outcome="ok").inc()
        self._metrics.set_model(loaded.version)
        _log.info("serving model version %s from %s", loaded.version, bundle.path,
                  extra={"model_version": loaded.version, "previous_version": previous.version if previous else None})
        return loaded

    def reload_if_changed(self) -> LoadedModel | None:
        """For the poller: reload when ``current`` points at a bundle other than the one served (a target
        that failed is not retried until ``current`` moves again)."""
        try:
            target = resolve(self.model_dir)
        except NbmError as exc:
            if self.last_error != str(exc):
                self.last_error = str(exc)
                _log.error("model poll: %s", exc)
            return None
        loaded = self._loaded
        if (loaded is not None and loaded.bundle.path == target) or target == self._failed_target:
            return None
        try:
            return self.reload()
        except ReloadError:
            self._failed_target = target
            return None

    def _failed(self, target: Path, message: str, *, internal: bool) -> ReloadError:
        self.last_error = message
        self._metrics.reloads.labels(outcome="failed").inc()
        serving = f"; still serving version {self._loaded.version}" if self._loaded else "; no model is being served"
        _log.error("model load failed: %s%s", message, serving, extra={"model_dir": str(target)})
        return ReloadError(message + serving, internal=internal)


class ModelPoller:
    """Checks the model dir's ``current`` every ``seconds`` in a daemon thread (``[serving] reload_poll_seconds``)."""

    def __init__(self, holder: ModelHolder, seconds: float) -> None:
        self._holder = holder
        self._seconds = seconds
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="nbm-model-poller", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=self._seconds + 5)

    def _run(self) -> None:
        while not self._stop.wait(self._seconds):
            try:
                self._holder.reload_if_changed()
            except Exception:  # noqa: BLE001 - the poller must outlive any one failure
                _log.exception("model poll failed")
