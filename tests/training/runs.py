"""How the training tests run ``nbm train`` with a configuration of their own."""

from __future__ import annotations

from training.cli import main


def train_with_config(folder, data, config: str = "", *extra: str) -> int:
    """``nbm train`` on ``data`` with ``config`` as its nbm.toml, the model and MLflow under ``folder``: its
    exit code."""
    path = folder / "nbm.toml"
    path.write_text(config)
    return main(["train", "--data", str(data), "--model-dir", str(folder / "model"), "--tracking-uri",
                 f"sqlite:///{folder / 'mlflow.db'}", "--config", str(path), *extra])
