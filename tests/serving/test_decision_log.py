"""The decision log's stored candidates: packed since 2026-11-30, JSON before; both read back the same."""

from __future__ import annotations

import json
import sqlite3

import pandas as pd
import pytest

from serving.decision_log import SqliteDecisionLog, pack_candidates, unpack_candidates

CANDIDATES = (("m1", 0.1, 0.9166666666666666), ("m-ü", 1e-300, 0.041666666666666664), ("m\"3", 0.7300000000000001, 0.0))


def test_packed_candidates_read_back_exactly():
    assert unpack_candidates(pack_candidates(CANDIDATES)) == [list(c) for c in CANDIDATES]
    assert unpack_candidates(pack_candidates(())) == []


def test_json_candidates_of_older_rows_read_back_the_same():
    assert unpack_candidates(json.dumps([list(c) for c in CANDIDATES])) == unpack_candidates(pack_candidates(CANDIDATES))


def test_an_unknown_packed_form_is_an_error_not_garbage():
    with pytest.raises(ValueError, match="unknown packed form"):
        unpack_candidates(b"something else")


def test_a_log_with_rows_of_both_forms_exports_them_alike(tmp_path):
    path = tmp_path / "events.db"
    with SqliteDecisionLog(path):
        pass  # creates the table
    row = ("d-old", 1, 2, "c1", "email", "3", 0, json.dumps([["m1", 0.9166666666666666]]),
           json.dumps([list(c) for c in CANDIDATES]), "{}")
    with sqlite3.connect(path) as connection:  # a row as an earlier nbm wrote it
        connection.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
        connection.execute("INSERT INTO decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                           ("d-new", *row[1:8], pack_candidates(CANDIDATES), "{}"))
    with SqliteDecisionLog(path, read_only=True) as log:
        frame = pd.concat(list(log.since(None)))
    old, new = (frame[frame["decision_id"] == d].drop(columns="decision_id").reset_index(drop=True) for d in ("d-old", "d-new"))
    pd.testing.assert_frame_equal(old, new)
    assert old["message_id"].tolist() == ["m1", "m-ü", 'm"3'] and old["score"].tolist() == [0.1, 1e-300, 0.7300000000000001]
    assert old["served_rank"].fillna(0).tolist() == [1, 0, 0]  # m1 was served first; the others were not
