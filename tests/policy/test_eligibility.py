"""Eligibility rules and candidate expansion on hand-made tables."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.policy.eligibility import expand_candidates, valid_at
from tests.builders import messages_frame

T = pd.Timestamp("2026-03-01T00:00:00Z")


def test_validity_window_is_half_open_with_open_bounds():
    nat = np.iinfo(np.int64).min
    start, end = T.value, (T + pd.Timedelta(days=1)).value
    frm = np.array([start, start, nat, nat])
    to = np.array([end, end, nat, end])
    as_of = np.array([start, end, 0, end - 1])
    assert list(valid_at(frm, to, as_of)) == [True, False, True, True]
    assert not valid_at(np.array([start]), np.array([nat]), np.array([start - 1]))[0]


def test_candidates_are_the_channel_messages_valid_at_as_of():
    messages = messages_frame([
        {"message_id": "a", "channel": "email", "topic": "t"},
        {"message_id": "b", "channel": "email", "topic": "t", "valid_to": "2026-03-01T00:00:00Z"},
        {"message_id": "c", "channel": "sms", "topic": "t"},
        {"message_id": "d", "channel": "email", "topic": "t", "valid_from": "2026-03-02T00:00:00Z"},
    ])
    decisions = pd.DataFrame({"channel": ["email", "sms", "email", "push"],
                              "as_of": pd.to_datetime(["2026-02-28", "2026-03-01", "2026-03-03", "2026-03-03"], utc=True)})
    candidates = expand_candidates(decisions, messages)
    assert list(zip(candidates["decision"], candidates["message_id"])) == [(0, "a"), (0, "b"), (1, "c"), (2, "a"), (2, "d")]

