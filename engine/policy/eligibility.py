"""Who may receive what, when: pure rules shared by batch scoring, evaluation and the API.

- channel: a message is only sent on its own channel;
- validity: ``valid_from <= as_of < valid_to`` (an empty bound is open);
- consent: an ``unsubscribe`` from a channel strictly before ``as_of`` blocks that channel for good.
"""

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


def unsubscribed_before(events: pd.DataFrame, customer_ids: pd.Series, channels: pd.Series, as_of: pd.Series) -> np.ndarray:
    """True where the customer unsubscribed from the channel strictly before as_of."""
    unsubscribes = events.loc[events["event_type"] == "unsubscribe", ["customer_id", "channel", "ts"]]
    if unsubscribes.empty or len(customer_ids) == 0:
        return np.zeros(len(customer_ids), dtype=bool)
    first = unsubscribes.groupby(["customer_id", "channel"], observed=True)["ts"].min()
    keys = pd.MultiIndex.from_arrays([customer_ids.astype(str).to_numpy(), channels.astype(str).to_numpy()])
    first.index = pd.MultiIndex.from_arrays([first.index.get_level_values(0).astype(str), first.index.get_level_values(1).astype(str)])
    at = first.index.get_indexer(keys)
    first_ns = to_ns(first.reset_index(drop=True))
    when = np.where(at >= 0, first_ns[np.maximum(at, 0)], np.iinfo(np.int64).max)
    return when < to_ns(as_of.reset_index(drop=True))


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
