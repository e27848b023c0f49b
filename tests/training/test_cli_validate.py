"""``nbm validate`` end to end through the CLI entry point: output, rejects file and exit codes."""

from __future__ import annotations

import subprocess
import sys

import pandas as pd

from training.cli import main
from tests.builders import event, make_data_dir

GOOD_EVENTS = [event(f"2026-02-{day:02d}", event_id=f"e{day}") for day in range(1, 29)]


def test_clean_data_passes_with_exit_0(tmp_path, capsys):
    data = make_data_dir(tmp_path / "data", GOOD_EVENTS)
    assert main(["validate", "--data", str(data)]) == 0
    out = capsys.readouterr().out
    assert "events             28 accepted        0 rejected" in out
    assert "PASS: 0.00% of events rejected (limit 1.00%, validation.max_reject_share)" in out


def test_rejects_file_has_original_columns_file_row_and_reason(tmp_path, capsys):
    data = make_data_dir(tmp_path / "data", GOOD_EVENTS + [event("yesterday", event_id="bad")])
    rejects_path = tmp_path / "out" / "rejects.csv"
    code = main(["validate", "--data", str(data), "--rejects-out", str(rejects_path)])
    captured = capsys.readouterr()
    assert code == 2  # 1 of 29 is 3.4%, above the default 1%
    assert "FAIL: 3.45% of events rejected" in captured.out
    assert "error: " in captured.err and "1 of 29 events rejected (3.45%), above the limit of 1.00%" in captured.err
    rejects = pd.read_csv(rejects_path, dtype=str, keep_default_na=False)
    assert rejects.to_dict("records") == [
        {
            "table": "events",
            "source_file": str(data / "events.csv"),
            "row_number": "29",
            "reason": "bad_timestamp",
            "detail": "ts='yesterday' is not an ISO-8601 timestamp",
            "ts": "yesterday",
            "customer_id": "c1",
            "event_type": "visit",
            "channel": "",
            "message_id": "",
            "value": "",
            "propensity": "",
            "event_id": "bad",
        }
    ]


def test_reject_share_is_configurable_through_the_environment(tmp_path, capsys, monkeypatch):
    data = make_data_dir(tmp_path / "data", GOOD_EVENTS + [event("yesterday", event_id="bad")])
    monkeypatch.setenv("NBM_VALIDATION__MAX_REJECT_SHARE", "0.05")
    assert main(["validate", "--data", str(data)]) == 0
    assert "PASS: 3.45% of events rejected (limit 5.00%" in capsys.readouterr().out


def test_bad_inputs_exit_2_with_one_line_and_no_traceback(tmp_path, capsys):
    assert main(["validate", "--data", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err == f"error: {tmp_path / 'missing'}: data directory not found (or not a directory)\n"
    data = make_data_dir(tmp_path / "data", GOOD_EVENTS)
    assert main(["validate", "--data", str(data), "--rejects-out", str(tmp_path / "r.txt")]) == 2
    assert "unsupported rejects file type '.txt'" in capsys.readouterr().err
    config = tmp_path / "nbm.toml"
    config.write_text("[validation]\nmax_reject_share = -1\n")
    assert main(["validate", "--data", str(data), "--config", str(config)]) == 2
    assert "validation.max_reject_share: Input should be greater than or equal to 0" in capsys.readouterr().err


def test_usage_errors_exit_2(capsys):
    assert main(["validate"]) == 2
    assert main(["no-such-command"]) == 2
    assert "No such command 'no-such-command'" in capsys.readouterr().err


def test_console_script_prints_no_traceback_on_bad_input(tmp_path):
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "messages.csv").write_bytes(b"\x00\x01binary")
    (tmp_path / "data" / "events.csv").write_text("ts,customer_id,event_type\n2026-01-01,c1,visit\n")
    done = subprocess.run(
        [sys.executable, "-m", "training.cli", "validate", "--data", str(tmp_path / "data")],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip() == (
        f"error: {tmp_path / 'data' / 'messages.csv'}: not a text file (binary content); expected CSV text"
    )
