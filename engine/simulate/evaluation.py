"""How good are a policy's choices under the true response model?

For each decision point (customer, channel, ts) the true expected reward of the chosen message is compared
with a uniformly random and with the best (oracle) choice among the channel's messages valid at ts. The
normalised gain (V_policy - V_random) / (V_oracle - V_random) is 1 for the oracle and about 0 for random.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from engine.simulate.timeline import ALWAYS_NS, NEVER_NS, optional_series_to_ns, series_to_ns

if TYPE_CHECKING:
    from engine.simulate.ground_truth import GroundTruth

REWARDS: tuple[str, ...] = ("open", "click", "conversion", "value")


def _eligible_pairs(decisions: pd.DataFrame, messages: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(decision row, message row) for every message of the decision's channel valid at its ts."""
    ts = series_to_ns(decisions["ts"], "decisions.ts")
    valid_from = optional_series_to_ns(messages["valid_from"], ALWAYS_NS, "messages.valid_from") \
        if "valid_from" in messages else np.full(len(messages), ALWAYS_NS, dtype=np.int64)
    valid_to = optional_series_to_ns(messages["valid_to"], NEVER_NS, "messages.valid_to") \
        if "valid_to" in messages else np.full(len(messages), NEVER_NS, dtype=np.int64)
    decision_channel = decisions["channel"].astype(str).to_numpy()
    message_channel = messages["channel"].astype(str).to_numpy()
    rows, candidates = [], []
    for channel in np.unique(decision_channel):  # a handful of channels, each one broadcast
        on_channel = np.flatnonzero(decision_channel == channel)
        offered = np.flatnonzero(message_channel == channel)
        t = ts[on_channel][:, None]
        valid = (valid_from[offered][None, :] <= t) & (t < valid_to[offered][None, :])
        row, column = np.nonzero(valid)
        rows.append(on_channel[row])
        candidates.append(offered[column])
    if not rows:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    return np.concatenate(rows), np.concatenate(candidates)


def _rewards(truth: GroundTruth, requests: pd.DataFrame, events: pd.DataFrame, reward: str) -> np.ndarray:
    if reward not in REWARDS:
        raise ValueError(f"unknown reward {reward!r}; expected one of {', '.join(REWARDS)}")
    probabilities = truth.response_probabilities(requests, events)
    if reward == "value":
        value = truth.catalog.value[truth.message_codes(requests["message_id"], "requests")]
        return probabilities["p_conversion"].to_numpy() * value
    return probabilities[f"p_{reward}"].to_numpy()


def policy_values(truth: GroundTruth, decisions: pd.DataFrame, events: pd.DataFrame, messages: pd.DataFrame,
                  reward: str = "click") -> pd.DataFrame:
    """Per decision (aligned with ``decisions``): channel, policy, random, oracle and n_eligible.

    ``decisions`` has customer_id, channel, ts and the chosen message_id; ``messages`` is the catalog that
    defines the eligible set. random and oracle are NaN where no message was eligible.
    """
    missing = [c for c in ("customer_id", "channel", "ts", "message_id") if c not in decisions.columns]
    if missing:
        raise ValueError(f"decisions: missing columns {missing}")
    decisions = decisions.reset_index(drop=True)
    row, candidate = _eligible_pairs(decisions, messages)
    requests = pd.DataFrame({
        "customer_id": pd.concat([decisions["customer_id"].iloc[row], decisions["customer_id"]],
                                 ignore_index=True).astype(str),
        "message_id": pd.concat([messages["message_id"].iloc[candidate], decisions["message_id"]],
                                ignore_index=True).astype(str),
        "ts": pd.concat([decisions["ts"].iloc[row], decisions["ts"]], ignore_index=True),
    })
    values = _rewards(truth, requests, events, reward)
    candidate_values, chosen_values = values[: len(row)], values[len(row):]

    n = len(decisions)
    n_eligible = np.bincount(row, minlength=n)
    total = np.bincount(row, weights=candidate_values, minlength=n)
    best = np.full(n, -np.inf)
    np.maximum.at(best, row, candidate_values)
    has_choice = n_eligible > 0
    return pd.DataFrame({
        "channel": decisions["channel"].astype(str).to_numpy(),
        "policy": chosen_values,
        "random": np.where(has_choice, total / np.maximum(n_eligible, 1), np.nan),
        "oracle": np.where(has_choice, best, np.nan),
        "n_eligible": n_eligible,
    })


def gain_of(values: pd.DataFrame) -> float:
    """Normalised gain of a ``policy_values`` frame (or a slice of it, e.g. one channel)."""
    scored = values[values["n_eligible"] > 0]
    random_total = scored["random"].sum()
    span = scored["oracle"].sum() - random_total
    return float((scored["policy"].sum() - random_total) / span) if span > 0 else float("nan")


def normalised_gain(truth: GroundTruth, decisions: pd.DataFrame, events: pd.DataFrame, messages: pd.DataFrame,
                    reward: str = "click") -> float:
    """(V_policy - V_random) / (V_oracle - V_random) summed over the decisions that had a choice."""
    return gain_of(policy_values(truth, decisions, events, messages, reward))
