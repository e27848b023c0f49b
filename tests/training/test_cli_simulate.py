"""``nbm simulate`` writes a data set that ``nbm validate`` accepts whole, in every format."""

from __future__ import annotations

import pytest

from training.cli import main


@pytest.mark.parametrize("fmt", ["parquet", "csv", "jsonl"])
def test_simulated_world_validates_without_rejects(tmp_path, capsys, fmt):
    out = tmp_path / "world"
    assert main(["simulate", "--out", str(out), "--customers", "150", "--days", "20", "--seed", "3", "--format", fmt]) == 0
    assert (out / "ground_truth").is_dir()
    assert main(["validate", "--data", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "customers         150 accepted        0 rejected" in printed
    assert "PASS: 0.00% of events rejected" in printed


def test_unknown_format_and_too_small_catalog_exit_2(tmp_path, capsys):
    assert main(["simulate", "--out", str(tmp_path), "--format", "xml"]) == 2
    assert "--format 'xml' is not one of parquet, csv, jsonl" in capsys.readouterr().err
    assert main(["simulate", "--out", str(tmp_path), "--messages", "10"]) == 2
