"""Valuing a policy on logged decisions through the decision engine: what it would have served.

Each sampled logged decision (:class:`engine.model.decisions.DecisionReplay`) becomes a request to
:class:`DecisionEngine` at its time, with the configured policy (exploration off) on a state of the data
strictly before the earliest replayed decision and, as live events, the customer's own events from that
cutoff up to (not including) the decision: caps, cooldowns, complaint suppression and consent count the
events before each decision, as the API would have. A policy's choice is its served message, or none when
the policy suppressed every candidate. The model and the baselines are valued the same way, each as the
engine's scorer (:class:`BoosterScorer`, :class:`BaselineScorer`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import lightgbm as lgb
import numpy as np
import pandas as pd

from engine.config import Settings
from engine.store.interface import EVENT_COLUMNS, contract_rows
from engine.features.log import EventLog
from engine.features.spec import FeatureSpec
from engine.features.state import FeatureState
from engine.model.bundle import Bundle
from engine.model.decisions import CandidateScores, PolicyChoices
from engine.policy.online import DecisionEngine, DecisionInput, UnknownChannelError

CHUNK = 512  # requests per DecisionEngine.decide_each call: one feature build and one model call each


@dataclass(frozen=True, eq=False)
class ReplayRequests:
    """The replayed decisions as engine requests (one per decision, in order): ``cutoff`` is the earliest
    decision's time, where the engine's state ends; each request carries its customer's events in
    [cutoff, decision time) as contract rows, computed once and shared by every policy replayed."""

    cutoff: pd.Timestamp
    inputs: tuple[DecisionInput, ...]

    @classmethod
    def of(cls, decisions: pd.DataFrame, events: pd.DataFrame) -> ReplayRequests:
        """``decisions``: customer_id, channel, as_of (:attr:`DecisionReplay.decisions`); ``events``: the
        data's contract frame."""
        as_of = pd.DatetimeIndex(pd.to_datetime(decisions["as_of"], utc=True))
        if not len(as_of):
            return cls(pd.Timestamp(0, tz="UTC"), ())
        cutoff = as_of.min()
        recent = events.loc[events["ts"] >= cutoff]
        recent = recent.assign(**{c: None for c in EVENT_COLUMNS if c not in recent.columns})
        # The engine reads no event id; contract rows need one, and a data set may leave it out.
        recent = recent.assign(event_id=recent["event_id"].astype(object).where(recent["event_id"].notna(), "replayed"))
        customer = recent["customer_id"].astype(str).to_numpy()
        order = np.lexsort((recent["ts"].to_numpy(dtype="datetime64[ns]").view(np.int64), customer))  # stable
        recent = recent.iloc[order]
        rows = contract_rows(recent[list(EVENT_COLUMNS)])
        customer, ts = customer[order], np.array([row[0] for row in rows], dtype=np.int64)
        owners, starts = np.unique(customer, return_index=True)
        span = dict(zip(owners.tolist(), zip(starts.tolist(), [*starts[1:].tolist(), len(rows)])))
        inputs = []
        for i, (customer_id, channel, when) in enumerate(zip(decisions["customer_id"].astype(str), decisions["channel"].astype(str),
                                                             as_of.asi8.tolist())):
            start, stop = span.get(customer_id, (0, 0))
            before = start + int(np.searchsorted(ts[start:stop], when, side="left"))  # strictly before the decision
            inputs.append(DecisionInput(customer_id, channel, pd.Timestamp(when, tz="UTC"), rows[start:before],
                                        decision_id=f"replay-{i}"))
        return cls(cutoff, tuple(inputs))

    def state(self, log: EventLog, max_window_days: int) -> FeatureState:
        """The engine's state: ``log``'s events strictly before the cutoff (``log`` encoded with the
        vocabulary of the model replayed)."""
        return FeatureState.at_cutoff(log, self.cutoff, max_window_days)


class Baseline(Protocol):
    """A fitted baseline of :mod:`engine.model.baselines`."""

    name: str
    reads: frozenset[str]
    probability: bool

    def score(self, examples: pd.DataFrame, features: pd.DataFrame) -> np.ndarray: ...


@dataclass(frozen=True, eq=False)
class BoosterScorer:
    """A LightGBM model as the engine's scorer (its first ``num_iteration`` trees; None: all)."""

    booster: lgb.Booster
    reads: frozenset[str]
    probability: bool
    num_iteration: int | None = None
    num_threads: int = 1

    @classmethod
    def of(cls, booster: lgb.Booster, feature_names: Sequence[str], *, probability: bool, num_iteration: int | None = None,
           num_threads: int = 1) -> BoosterScorer:
        """``reads``: the features some tree (of the first ``num_iteration``) splits on, by position in
        ``feature_names``, as :attr:`Bundle.split_features` reads them."""
        used = booster.feature_importance(importance_type="split", iteration=num_iteration) > 0
        reads = frozenset(name for name, split in zip(feature_names, used, strict=True) if split)
        return cls(booster, reads, probability, num_iteration, num_threads)

    def score(self, features: np.ndarray, message_ids: np.ndarray) -> np.ndarray:
        return self.booster.predict(features, num_iteration=self.num_iteration, num_threads=self.num_threads)


@dataclass(frozen=True, eq=False)
class BaselineScorer:
    """A fitted baseline as the engine's scorer: it reads the features it names and each candidate's
    message and channel (from the catalog)."""

    baseline: Baseline
    feature_names: tuple[str, ...]
    channel_of: Mapping[str, str]

    @property
    def reads(self) -> frozenset[str]:
        return self.baseline.reads

    @property
    def probability(self) -> bool:
        return self.baseline.probability

    def score(self, features: np.ndarray, message_ids: np.ndarray) -> np.ndarray:
        ids = np.asarray(message_ids, dtype=object)
        examples = pd.DataFrame({"message_id": ids, "channel": [self.channel_of[m] for m in ids.tolist()]})
        return self.baseline.score(examples, pd.DataFrame(features, columns=list(self.feature_names), copy=False))


def replay_bundle(*, spec: FeatureSpec, feature_names: tuple[str, ...], messages: pd.DataFrame, customers: pd.DataFrame,
                  state: FeatureState, booster: lgb.Booster, metadata: dict) -> Bundle:
    """A bundle in memory for the engine to replay with (its model is the scorer's: never compiled)."""
    return Bundle(path=Path("<replay>"), booster=booster, spec=spec, feature_names=feature_names, messages=messages,
                  customers=customers, state=state, snapshot=pd.DataFrame(), metadata=metadata)


def without_exploration(settings: Settings) -> Settings:
    """The configured policy as it serves, but greedy: a replayed decision's choice is its best message."""
    return settings.model_copy(update={"policy": settings.policy.model_copy(update={"exploration": "none"})})


def replay_choices(engine: DecisionEngine, requests: ReplayRequests, *, keep_scores: bool = False,
                   chunk: int = CHUNK) -> PolicyChoices:
    """What ``engine`` serves at each request (slot 1; None when it suppressed everything, or when the
    decision's channel has no message the engine's catalog knows) and, with ``keep_scores``, every
    candidate's score (:class:`CandidateScores`)."""
    n = len(requests.inputs)
    chosen = np.full(n, None, dtype=object)
    decision, message_id, score = [], [], []
    for start in range(0, n, chunk):
        for i, answer in enumerate(engine.decide_each(requests.inputs[start:start + chunk]), start):
            if isinstance(answer, UnknownChannelError):
                continue
            if isinstance(answer, Exception):
                raise answer
            if answer.messages:
                chosen[i] = answer.messages[0].message_id
            if keep_scores:
                decision.append(np.full(len(answer.candidates), i, dtype=np.int64))
                message_id.append(answer.candidates.message_id.astype(object))
                score.append(answer.candidates.score)
    scores = None
    if keep_scores:
        scores = CandidateScores(np.concatenate(decision) if decision else np.zeros(0, np.int64),
                                 np.concatenate(message_id) if message_id else np.zeros(0, object),
                                 np.concatenate(score) if score else np.zeros(0))
    return PolicyChoices(chosen, scores)
