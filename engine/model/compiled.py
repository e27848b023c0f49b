"""The ranker compiled to machine code by lleaves, for the few hundred rows of an online decision.

On the few hundred rows of a decision, most of LightGBM's ``Booster.predict`` time is fixed cost per
call; the lleaves-compiled model answers the same rows in a fraction of that time, with the same scores
(to rounding; docs/benchmarks.md has the measured figures). Training compiles the model once into the bundle (``model.so``), with the CPU it was compiled
for; loading uses that file on the same CPU, compiles again in memory on another one, and falls back to
``Booster.predict`` when lleaves is missing or fails: the model is the same either way.

lleaves runs the trees in blocks (``fblocksize``, 34 by default), each block over every row: the
matrix of a decision batch (2,000-2,400 rows of 166 float64 at 279-330 candidates, 3 MB) is read once
per block, while a block's machine code stays in the instruction cache. :func:`compile_options` makes the
fewest blocks of at most :data:`TREES_PER_BLOCK` trees: for the small forests the default training
makes, fewer blocks mean fewer passes over the batch's matrix, while past some 64 trees a block's code
no longer stays in the instruction cache and smaller blocks are faster again (timings of the bench
models in docs/benchmarks.md).
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Protocol

import lightgbm as lgb
import numpy as np

COMPILED_FILE = "model.so"
TARGET_FILE = "model.target.json"
TREES_PER_BLOCK = 64
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
        # One thread: for a few hundred rows, starting OpenMP threads costs more than it saves.
        return self.booster.predict(x, num_threads=1)


@dataclass(frozen=True, eq=False)
class CompiledPredictor:
    model: object  # lleaves.Model, compiled
    kind: str = "lleaves"

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.model.predict(np.ascontiguousarray(x, dtype=np.float64), n_jobs=1)


def compile_options(num_trees: int) -> dict[str, int]:
    """lleaves' compile options for a forest of ``num_trees``: the fewest blocks of at most
    :data:`TREES_PER_BLOCK` trees, of equal size (module docstring)."""
    blocks = max(1, math.ceil(num_trees / TREES_PER_BLOCK))
    return {"fblocksize": max(1, math.ceil(num_trees / blocks))}


def host_target(options: dict[str, int] | None = None) -> dict[str, object]:
    """What a compiled model is only valid for: this CPU, the compiler's versions and the compile
    ``options``."""
    import llvmlite.binding as llvm

    return {"cpu": llvm.get_host_cpu_name(), "features": llvm.get_host_cpu_features().flatten(),
            "lleaves": metadata.version("lleaves"), "llvmlite": metadata.version("llvmlite"), "options": options or {}}


def compile_into(folder: Path, model_file: str = "model.txt") -> bool:
    """Compile ``folder/model_file`` into ``folder/model.so`` and record its target; False (and a log
    line) if it cannot be compiled here: serving then uses LightGBM."""
    folder = Path(folder)
    try:
        import lleaves

        model = lleaves.Model(model_file=str(folder / model_file))
        options = compile_options(model.num_trees())
        model.compile(cache=str(folder / COMPILED_FILE), **options)
        (folder / TARGET_FILE).write_text(json.dumps(host_target(options), indent=2))
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
        options = compile_options(model.num_trees())
        cached = folder / COMPILED_FILE
        target = folder / TARGET_FILE
        if cached.is_file() and target.is_file() and json.loads(target.read_text()) == host_target(options):
            model.compile(cache=str(cached), **options)
        else:  # compiled elsewhere, otherwise or not at all: compile for this CPU, in memory (bundles are read-only)
            model.compile(**options)
        return CompiledPredictor(model)
    except Exception as exc:
        _log.warning("LightGBM's predict serves %s (the compiled model cannot be used: %s: %s)", folder, type(exc).__name__, exc)
        return BoosterPredictor(booster)
