"""Batch decisions (``nbm score``): the decision engine over many customers at one instant.

The engine is the API's (:class:`~engine.policy.online.DecisionEngine`), built on a state made from the
data's events before ``as_of``: rules, contact policy (caps and cooldowns count the data's impressions),
complaint suppression, arbitration with levers and, for every channel at once, coordination across
channels. Customers are decided in chunks, each chunk with one feature build and one model call, and
their decisions become rows of a table as they come, so memory holds one chunk of decisions at a time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import replace

import numpy as np
import pandas as pd

from engine.config import Settings
from engine.errors import ConfigError
from engine.features.log import EventLog
from engine.features.state import FeatureState
from engine.model.bundle import Bundle
from engine.policy.online import CustomerInput, Decision, DecisionEngine, DecisionInput

ROW_COLUMNS = ("customer_id", "channel", "rank", "message_id", "topic", "score", "priority", "propensity", "decision_id", "suppressed")


def batch_settings(settings: Settings, *, explore: bool) -> Settings:
    """The settings batch decisions run with: exploration off unless ``explore``, which needs an exploring
    ``[policy]``."""
    policy = settings.policy
    if explore and (policy.exploration == "none" or policy.exploration_rate == 0.0):
        raise ConfigError('--explore needs an exploring policy: set [policy] exploration = "epsilon_greedy" or "softmax" '
                          "and a non-zero exploration_rate")
    return settings if explore else settings.model_copy(update={"policy": policy.model_copy(update={"exploration": "none"})})


def engine_at(bundle: Bundle, settings: Settings, *, events: pd.DataFrame, customers: pd.DataFrame, messages: pd.DataFrame,
              as_of: pd.Timestamp, seed: int) -> DecisionEngine:
    """The decision engine of ``bundle`` and ``settings`` (:func:`batch_settings`) with the state of
    ``events`` before ``as_of`` (contract frame), the profiles of ``customers`` and the catalog
    ``messages`` (only messages the model knows); ``seed`` seeds exploration, as the API's."""
    spec = bundle.spec
    state = FeatureState.at_cutoff(EventLog.from_events(events, spec.vocab), as_of, spec.settings.max_window_days)
    return DecisionEngine(replace(bundle, state=state, customers=customers, messages=messages), settings, seed=seed)


def decide_in_chunks(engine: DecisionEngine, customer_ids: Sequence[str], *, as_of: pd.Timestamp, channel: str | None,
                     k: int, chunk: int) -> Iterator[list[Decision]]:
    """Every customer's decisions at ``as_of``, ``chunk`` customers at a time: on ``channel`` with ``k``
    messages (:meth:`DecisionEngine.decide_each`), or on every channel, coordinated, one message each
    (``channel`` None: :meth:`DecisionEngine.decide_all_channels_each`). Decision ids are derived from the
    model, customer, channel and instant, so that a run replays (exploration draws from them)."""
    version = engine.model_version
    for start in range(0, len(customer_ids), chunk):
        ids = [str(c) for c in customer_ids[start : start + chunk]]
        if channel is None:
            answers = engine.decide_all_channels_each([
                CustomerInput(c, as_of, decision_ids=[decision_id(version, c, name, as_of) for name in engine.channels]) for c in ids])
            yield [decision for answer in answers for decision in _raised(answer)]
        else:
            answers = engine.decide_each([DecisionInput(c, channel, as_of, None, k, False, decision_id(version, c, channel, as_of))
                                          for c in ids])
            yield [decision for answer in answers for decision in _raised((answer,) if isinstance(answer, Decision) else answer)]


def decision_rows(decisions: Sequence[Decision]) -> pd.DataFrame:
    """One row per served message, and one per decision that served nothing (no message, no rank), with
    the decision's suppressed counts as ``rule:count`` text (rules in name order, ``;`` between)."""
    rows = []
    for d in decisions:
        suppressed = ";".join(f"{rule}:{count}" for rule, count in sorted(d.suppressed.items()))
        if not d.messages:
            rows.append((d.customer_id, d.channel, None, None, None, np.nan, np.nan, np.nan, d.decision_id, suppressed))
        for rank, m in enumerate(d.messages, start=1):
            rows.append((d.customer_id, d.channel, rank, m.message_id, m.topic, m.score, m.priority, m.propensity, d.decision_id, suppressed))
    frame = pd.DataFrame.from_records(rows, columns=list(ROW_COLUMNS))
    frame["rank"] = frame["rank"].astype("Int64")
    for name in ("customer_id", "channel", "message_id", "topic", "decision_id", "suppressed"):
        frame[name] = frame[name].astype("string")
    return frame


def decision_id(model_version: str, customer_id: str, channel: str, as_of: pd.Timestamp) -> str:
    """32 hex digits, the same for the same model, customer, channel and instant."""
    key = "\x1f".join((model_version, customer_id, channel, str(pd.Timestamp(as_of).value)))
    return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()


def _raised(answer):
    if isinstance(answer, Exception):
        raise answer
    return answer
