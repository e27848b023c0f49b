"""Which messages are candidates, when: a message is only sent on its own channel, and only while valid,
``valid_from <= as_of < valid_to`` (an empty bound is open). Consent is the contact policy's
(:mod:`engine.policy.contact`)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from engine.timeutil import to_ns

NAT = np.iinfo(np.int64).min  # pandas' NaT in int64 form



def valid_at(valid_from_ns: np.ndarray, valid_to_ns: np.ndarray, as_of_ns: np.ndarray) -> np.ndarray:
    """Element-wise validity; NaT bounds are open. Arrays broadcast (e.g. messages x decisions)."""
    started = (valid_from_ns == NAT) | (valid_from_ns <= as_of_ns)
    not_ended = (valid_to_ns == NAT) | (as_of_ns < valid_to_ns)
    return started & not_ended


def expand_candidates(decisions: pd.DataFrame, messages: pd.DataFrame) -> pd.DataFrame:
    """Every (decision, message) pair where the message is of the decision's channel and valid at its
    ``as_of``. ``decisions`` has ``channel`` and ``as_of``; the result has ``decision`` (the row position
    in ``decisions``) and ``message_id``, ordered by decision then catalog order."""
    parts = []
    as_of = to_ns(decisions["as_of"])
    channel = decisions["channel"].astype(str).to_numpy()
    for name, catalog in messages.groupby(messages["channel"].astype(str), sort=True):
        rows = np.flatnonzero(channel == name)
        if not len(rows):
            continue
        ok = valid_at(to_ns(catalog["valid_from"])[None, :], to_ns(catalog["valid_to"])[None, :], as_of[rows][:, None])
        decision_at, message_at = np.nonzero(ok)
        parts.append(pd.DataFrame({"decision": rows[decision_at], "message_id": catalog["message_id"].to_numpy()[message_at]}))
    if not parts:
        return pd.DataFrame({"decision": np.zeros(0, dtype=np.int64), "message_id": pd.Series([], dtype="string")})
    return pd.concat(parts, ignore_index=True).sort_values("decision", kind="stable", ignore_index=True)
