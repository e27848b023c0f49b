"""The ranker compiled to machine code by lleaves, for the few hundred rows of an online decision.

LightGBM's ``Booster.predict`` spends ~0.3 ms on 60 rows of 166 features, most of it fixed cost; the
lleaves-compiled model answers the same rows in ~0.02 ms, equal to 1e-15 (measured on the serving bench
model). Training compiles the model once into the bundle (``model.so``), with the CPU it was compiled
for; loading uses that file on the same CPU, compiles again in memory on another one, and falls back to
``Booster.predict`` when lleaves is missing or fails: the model is the same either way.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

import lightgbm as lgb
import numpy as np

COMPILED_FILE = "model.so"
TARGET_FILE = "model.target.json"
_log = logging.getLogger(__name__)


class Predictor(Protocol):
    kind: str  # "lleaves" or "lightgbm": shown by GET /v1/model

    def predict(self, x: np.ndarray) -> np.ndarray:
        """The model's output (a probability for the binary objective) for each row of ``x``."""


@dataclass(frozen=True, eq=False)
class BoosterPredictor:
    booster: lgb.Booster
    kind: str = "lightgbm"

    def predict(self, x: np.ndarray) -> np.ndarray:
        # One thread: for a few hundred rows, starting OpenMP threads costs more than it saves (~6x).
        return self.booster.predict(x, num_threads=1)


@dataclass(frozen=True, eq=False)
class CompiledPredictor:
    model: object  # lleaves.Model, compiled
    kind: str = "lleaves"

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(np.ascontiguousarray(x, dtype=np.float64), n_jobs=1)


def host_target() -> dict[str, str]:
    """What a compiled model is only valid for: this CPU and the compiler's versions."""
    import llvmlite.binding as llvm

    return {"cpu": llvm.get_host_cpu_name(), "features": llvm.get_host_cpu_features().flatten(),
            "lleaves": metadata.version("lleaves"), "llvmlite": metadata.version("llvmlite")}


def compile_into(folder: Path, model_file: str = "model.txt") -> bool:
    """Compile ``folder/model_file`` into ``folder/model.so`` and record its target; False (and a log
    line) if it cannot be compiled here: serving then uses LightGBM."""
    folder = Path(folder)
    try:
        import lleaves

        lleaves.Model(model_file=str(folder / model_file)).compile(cache=str(folder / COMPILED_FILE))
        (folder / TARGET_FILE).write_text(json.dumps(host_target(), indent=2))
        return True
    except Exception as exc:  # an optional speed-up: never a reason to fail a training run
        _log.warning("the model is not compiled (serving will use LightGBM's predict): %s: %s", type(exc).__name__, exc)
        (folder / COMPILED_FILE).unlink(missing_ok=True)
        return False


def load_predictor(folder: Path, booster: lgb.Booster, model_file: str = "model.txt") -> Predictor:
    """The compiled model of a bundle folder if it can run here, else LightGBM's predict on ``booster``."""
    folder = Path(folder)
    try:
        import lleaves

        model = lleaves.Model(model_file=str(folder / model_file))
        cached = folder / COMPILED_FILE
        target = folder / TARGET_FILE
        if cached.is_file() and target.is_file() and json.loads(target.read_text()) == host_target():
            model.compile(cache=str(cached))
        else:  # compiled elsewhere (or not at all): compile for this CPU, in memory (bundles are read-only)
            model.compile()
        return CompiledPredictor(model)
    except Exception as exc:
        _log.warning("LightGBM's predict serves %s (the compiled model cannot be used: %s: %s)", folder, type(exc).__name__, exc)
        return BoosterPredictor(booster)
