"""The server's decision log: its retention setting, and its pruning by the server's clock."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from engine.store.decisions import SqliteDecisionLog
from engine.store.events import store_path
from tests.store.logged import logged_decision, logged_ids


def test_the_retention_setting_reaches_the_servers_decision_log_and_bad_values_are_refused(make_client, tmp_path):
    from engine.errors import ConfigError

    default = make_client().app.state.nbm.decision_log.get()
    assert default.retention == pd.Timedelta(days=30) and default._clock is not None
    week = make_client("[serving]\ndecision_log_retention_days = 7.5\n", home=tmp_path / "week").app.state.nbm.decision_log.get()
    assert week.retention == pd.Timedelta(days=7, hours=12)
    keep_all = make_client("[serving]\ndecision_log_retention_days = 0\n", home=tmp_path / "all").app.state.nbm.decision_log.get()
    assert keep_all.retention is None
    for value, reason in (("-1", "greater than or equal to 0"), ("inf", "a finite number"), ("nan", "a finite number"),
                          ("1e9", "less than or equal to 36500")):  # 1e9 days would overflow a timedelta
        with pytest.raises(ConfigError, match=f"serving.decision_log_retention_days: Input should be {reason}"):
            make_client(f"[serving]\ndecision_log_retention_days = {value}\n", home=tmp_path / "bad")


def test_the_server_prunes_its_decision_log_by_its_clock_and_counts_it_in_the_metrics(make_client, tmp_path, bundle_facts):
    home = tmp_path / "pruning"
    now = bundle_facts["now"]
    with SqliteDecisionLog(store_path(home)) as log:  # three decisions from before the week the server keeps
        for i in range(3):
            log.append([logged_decision(i)], now - pd.Timedelta(days=8 + i))
    client = make_client("[serving]\ndecision_log_retention_days = 7\n", home=home)
    kept = client.post("/v1/decisions", json={"customer_id": bundle_facts["customer"], "channel": "email"}).json()
    deadline = time.monotonic() + 30  # the log's thread checkpoints (and first prunes) a second after it starts
    while "nbm_decision_log_pruned_total 3.0" not in client.get("/metrics").text and time.monotonic() < deadline:
        time.sleep(0.05)
    assert "nbm_decision_log_pruned_total 3.0" in client.get("/metrics").text
    assert client.app.state.nbm.logged()
    with SqliteDecisionLog(store_path(home), read_only=True) as log:
        assert logged_ids(log) == [kept["decision_id"]]
