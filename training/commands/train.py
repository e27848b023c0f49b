"""``nbm train``: the nightly run (see training/pipeline.py), with its outcome summarised on stdout."""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path

import typer

from engine.config import Settings
from training.pipeline import train
from training.progress import Progress
from training.tracking import default_tracking_uri
from training.tuning import TuneRequest


def run_train(settings: Settings, *, data: Path, model_dir: Path | None, tracking_uri: str | None, force_promote: bool,
              tune: TuneRequest | None = None) -> None:
    outcome = train(
        settings,
        data_dir=data,
        model_dir=model_dir or settings.paths.home / "model",
        tracking_uri=tracking_uri or default_tracking_uri(settings),
        force_promote=force_promote,
        now=datetime.now(timezone.utc),
        progress=Progress(),
        tune=tune,
    )
    m = outcome.metrics
    metric = outcome.gate_metric.key
    typer.echo(f"model: nbm-ranker version {outcome.model_version} (run {outcome.run_id})")
    typer.echo(f"test {metric}: " + ", ".join(f"{policy} {_with_interval(m, prefix + metric)}" for policy, prefix in
                                             (("model", ""), ("popularity", "popularity."), ("random", "random."))))
    if "gain" in m:
        per_channel = ", ".join(f"{k.split('.', 1)[1]} {v:.3f}" for k, v in m.items() if k.startswith("gain."))
        typer.echo(f"ground-truth normalised gain: {m['gain']:.3f} ({per_channel}); popularity {m.get('popularity.gain', float('nan')):.3f}")
    typer.echo(f"bundle: {outcome.bundle}")
    typer.echo(outcome.decision.reason)


def _with_interval(metrics: dict[str, float], name: str) -> str:
    value = f"{metrics.get(name, float('nan')):.4f}"
    if f"{name}.ci_low" in metrics:
        value += f" [{metrics[name + '.ci_low']:.4f}, {metrics[name + '.ci_high']:.4f}]"
    return value
