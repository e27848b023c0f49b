"""``nbm --version`` through the CLI entry point, and the example Airflow DAG the operations runbook ships."""

from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from training.cli import main, nbm_version

DAG_EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "nbm_nightly_dag.py"


def test_version_prints_the_installed_version_and_exits_0(capsys):
    assert main(["--version"]) == 0
    captured = capsys.readouterr()
    assert captured.out == f"nbm {version('nbm')}\n"
    assert captured.err == ""


def test_version_falls_back_to_pyproject_when_nbm_is_not_installed(monkeypatch):
    import importlib.metadata
    import tomllib

    def not_installed(name: str) -> str:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    pyproject = tomllib.loads((DAG_EXAMPLE.parents[2] / "pyproject.toml").read_text())
    assert nbm_version() == pyproject["project"]["version"]


def test_version_wins_over_a_command(capsys):
    assert main(["--version", "validate"]) == 0
    assert capsys.readouterr().out.startswith("nbm ")


def test_example_airflow_dag_is_valid_python():
    # Airflow is not a dependency: the example is compiled, never imported.
    compile(DAG_EXAMPLE.read_text(), str(DAG_EXAMPLE), "exec")
