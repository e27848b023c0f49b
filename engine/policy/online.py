"""The decision engine: the one decider behind ``POST /v1/decisions``, ``GET /v1/customers/{id}/next-best-messages``,
``nbm score`` (campaigns) and training's replay of logged decisions.

One decision, for one customer on one channel at ``as_of`` (passed in: the engine never reads the clock):

1. candidates: the channel's messages valid at ``as_of`` (not a suppression: they were never candidates);
2. consent: an unsubscribe from the channel before ``as_of``, in the bundle's state or in the live events,
   suppresses every candidate as ``consent`` (compacted unsubscribe records keep their channel and last
   time, so the state answers this exactly);
3. rules (``rules.py``: journey stage, ``[[policy.rules]]``) and 4. contact policy (``contact.py``) from
   the customer's state plus live events; ``suppressed`` counts each removed candidate under the first
   rule it failed;
5. features by the training code (:func:`engine.features.build.build_encoded_features`) over a history
   of just this customer (or of the customers decided together by :meth:`DecisionEngine.decide_each` or
   :meth:`DecisionEngine.decide_all_channels_each`: one pass of the feature code and one model call for
   all, each customer's features from its own events), then the model's probability, 6. priority
   (``arbitration.py``) and
   7. exploration (``exploration.py``) with a generator seeded by ``(seed, decision_id)``: a decision
   replays from its id; 8. explanations only for the served messages, and only when asked.

Everything that does not depend on the request is prepared once per bundle in ``__init__``.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from engine.config import Settings
from engine.features.build import CatalogTable, EncodedTables, FeatureMatrix, ProfileTable, build_encoded_features, make_history
from engine.features.definitions import UnknownFeatures
from engine.errors import ModelMismatchError, NbmError
from engine.ids import random_ids
from engine.features.state import StaleRequestError
from engine.model.bundle import Bundle
from engine.policy.arbitration import priority as arbitration_priority
from engine.policy.contact import (CONSENT, ContactHistory, batch_standing, contact_verdict, for_catalog, passes_everyone,
                                   reads_impressions, remaining_sends)
from engine.policy.explain import top_contributions
from engine.policy.exploration import greedy_slates, select_with, slot_distribution
from engine.policy.names import check_names
from engine.policy.online_catalog import ChannelMessages, OnlineCatalog, UnknownChannelError, catalog_entries
from engine.policy.online_coordination import coordinate_each
from engine.policy.coordination import OFFER_TAKEN, TOPIC_TAKEN
from engine.policy.online_decision import CandidateScorer, CustomerInput, Decision, DecisionInput, Displaced, Reason, ServedMessage
from engine.policy.online_state import BatchEvents, CustomerEvents, CustomerStates, LiveEvents
from engine.policy.scored import ScoredCandidates
from engine.policy.rules import DAYS_SINCE_PURCHASE, JOURNEY_STAGE, Verdict, required_attributes, rules_verdict

if TYPE_CHECKING:
    from engine.features.numba_interpreter import CompiledFeatures

Interpreter = Literal["numba", "numpy"]

__all__ = ["CandidateScorer", "CustomerInput", "Decision", "DecisionEngine", "DecisionInput", "Displaced", "ModelMismatchError", "Reason", "ServedMessage", "StaleRequestError", "UnknownChannelError"]

EXPLAIN_TOP = 3  # reasons per served message
_log = logging.getLogger(__name__)


@dataclass(frozen=True, eq=False)
class _Ask:
    """One customer at one instant on some channels: what a feature build and a model call answer (the
    asks of a batch share one build and one call)."""

    customer_id: str
    live_events: LiveEvents | None
    as_of_ns: int
    channels: Sequence[ChannelMessages]


@dataclass(frozen=True, eq=False)
class _Slate:
    """One channel's candidates that passed every rule, scored; ``rows`` index the scored matrix."""

    messages: ChannelMessages
    at: np.ndarray  # positions in ``messages``
    rows: np.ndarray
    score: np.ndarray
    priority: np.ndarray
    suppressed: dict[str, int]

    def emptied(self) -> _Slate:
        """The slate without candidates (a channel not asked for)."""
        none = self.at[:0]
        return _Slate(self.messages, none, self.rows[:0], self.score[:0], self.priority[:0], {})


@dataclass(frozen=True, eq=False)
class _Scored:
    """An ask after the policy's rules and the model: its channels' slates (in the ask's order), the
    customer's contact history (None when no rule or cap could refuse a candidate: nothing read it) and
    the scored rows' matrix (float32 values) that the slates' ``rows`` index."""

    customer_id: str
    known: bool
    as_of_ns: int
    contact: ContactHistory | None
    slates: list[_Slate]
    x: np.ndarray


class DecisionEngine:
    def __init__(self, bundle: Bundle, settings: Settings, *, seed: int = 0, scorer: CandidateScorer | None = None,
                 interpreter: Interpreter = "numba") -> None:
        """``scorer``: what scores the candidates instead of the bundle's model (e.g. a baseline, so that
        evaluation values it under the same policy); explanations still come from the bundle's model.
        ``interpreter``: what computes the features of decisions, to the same values: "numba" (compiled
        when the engine is built; a few customers at a time, fast) or "numpy" (every feature term)."""
        self.bundle = bundle
        self.settings = settings
        self.seed = int(seed)
        self._scorer = scorer
        spec = bundle.spec
        self._spec = spec
        self._catalog = OnlineCatalog.from_messages(bundle.messages, spec)
        self.catalog = catalog_entries(bundle.messages)
        check_names(settings.policy, self._catalog.channels, set(bundle.messages["topic"].dropna().astype(str)),
                    set(bundle.messages["message_id"].astype(str)))
        self._offers_shared = self._catalog.offers_shared
        # The contact rules as they apply to this catalog (the offer spacing only where offers are shared).
        self._policy = settings.policy.model_copy(
            update={"contact": for_catalog(settings.policy.contact, offers_shared=self._offers_shared)})
        # Rules read customers-table columns from the profile; days since purchase comes from the features.
        profile_columns = tuple(c for c in required_attributes(settings.policy) if c != DAYS_SINCE_PURCHASE)
        self._customers = CustomerStates(bundle.state, spec.vocab, bundle.customers, profile_columns)
        self._tables = EncodedTables.build(CatalogTable.from_messages(bundle.messages, spec), ProfileTable.from_customers(bundle.customers), spec)
        self._channel_code = {name: spec.vocab.channels.index(name) for name in self._catalog.channels}
        if scorer is None:
            bundle.predictor  # noqa: B018 - compiled (or loaded) now, while the model loads, not on a first request
        self._message_ids = np.asarray(spec.vocab.messages.values, dtype=object)
        self._feature_names = tuple(bundle.feature_names)
        self._labels = spec.features.label_of
        self._feature_column = {name: j for j, name in enumerate(self._feature_names)}
        # A ranking objective gives raw scores; arbitration needs a probability, and a logistic keeps the order.
        self._probability = scorer.probability if scorer is not None else bundle.metadata.get("objective", "binary") == "binary"
        self._rules_apply = settings.policy.stage_targeting.enabled or bool(settings.policy.rules)
        # The matrix holds float32 values, as the model reads them; rules compare these columns in float64.
        self._precise = (JOURNEY_STAGE, DAYS_SINCE_PURCHASE) if self._rules_apply else ()
        # What decisions build: the features the model splits on (no score or contribution reads another)
        # and what rules read; a costly candidate column outside them may be left NaN.
        self._wanted = (scorer.reads if scorer is not None else bundle.split_features) | {JOURNEY_STAGE, DAYS_SINCE_PURCHASE}
        self._contact_reads_impressions = reads_impressions(self._policy.contact)
        self._check_features()
        self.interpreter = interpreter
        self._compiled: CompiledFeatures | None = self._compile() if interpreter == "numba" else None

    def _compile(self) -> CompiledFeatures:
        from engine.features.numba_interpreter import NotCompiled, compile_features  # numba: imported only here

        try:
            return compile_features(self._tables, self._feature_names, self._wanted, self._precise)
        except NotCompiled as exc:
            raise ModelMismatchError(f"model {self.model_version}: {exc}; decide with the numpy interpreter instead") from None

    @property
    def model_version(self) -> str:
        return self.bundle.version

    @property
    def channels(self) -> tuple[str, ...]:
        return self._catalog.channels

    def decide(self, customer_id: str, channel: str, *, k: int = 1, as_of: pd.Timestamp, live_events: LiveEvents | None,
               explain: bool = False, decision_id: str | None = None) -> Decision:
        """The best ``k`` messages for the customer on ``channel`` at ``as_of`` (module docstring)."""
        (answer,) = self.decide_each([DecisionInput(customer_id, channel, as_of, live_events, k, explain, decision_id)])
        if isinstance(answer, Exception):
            raise answer
        return answer

    def decide_each(self, inputs: Sequence[DecisionInput]) -> list[Decision | NbmError | ValueError]:
        """:meth:`decide` for each input, with one feature build and one model call for all of them (the
        answers are those of separate calls: every feature reads only its own customer's events). A
        request that cannot be answered gets its error in its place; the others are still decided."""
        answers: list[Decision | NbmError | ValueError | None] = [None] * len(inputs)
        asked: list[tuple[int, DecisionInput, _Ask]] = []
        for at, request in enumerate(inputs):
            try:
                if request.k < 1:
                    raise ValueError(f"k must be at least 1, got {request.k}")
                ask = _Ask(str(request.customer_id), request.live_events, self._as_of_ns(request.as_of),
                           (self._catalog.channel(request.channel),))
                asked.append((at, request, ask))
            except (NbmError, ValueError) as exc:
                answers[at] = exc
        if not asked:
            return answers  # type: ignore[return-value]
        scored = self._slates_each([ask for _, _, ask in asked])
        fresh = iter(random_ids(sum(not request.decision_id for _, request, _ in asked)))
        ids = [request.decision_id or next(fresh) for _, request, _ in asked]
        slates = [one.slates[0] for one in scored]
        # Each candidate passed the caps as if sent alone; the slate as a whole must fit them too.
        ks = [int(max(1, min(request.k, np.inf if one.contact is None else
                             remaining_sends(ask.channels[0].channel, one.contact, ask.as_of_ns, self._policy.contact))))
              for (_, request, ask), one in zip(asked, scored)]
        stamps = {ask.as_of_ns: pd.Timestamp(ask.as_of_ns, tz="UTC") for _, _, ask in asked}
        for i, ((at, request, ask), one, slate, (index, propensity, first)) in enumerate(
                zip(asked, scored, slates, self._choices(slates, ks, ids))):
            served = self._served(slate, one.x, index, propensity, request.explain)
            answers[at] = self._decision(ids[i], one.customer_id, one.known, slate, stamps[ask.as_of_ns], served,
                                         slate.suppressed, first)
        return answers  # type: ignore[return-value]

    def decide_all_channels(self, customer_id: str, *, as_of: pd.Timestamp, live_events: LiveEvents | None,
                            explain: bool = False, decision_ids: Sequence[str] | None = None,
                            channels: Sequence[str] | None = None) -> tuple[Decision, ...]:
        """One decision (k = 1) per channel of the catalog, or of ``channels`` (names in any case), in
        :attr:`channels` order (``decision_ids``: theirs; default random), coordinated across them
        (:mod:`engine.policy.online_coordination`); a channel left without a message counts its candidates
        under ``topic_taken`` or ``customer_cap``."""
        (answer,) = self.decide_all_channels_each([CustomerInput(customer_id, as_of, live_events, explain, decision_ids, channels)])
        if isinstance(answer, Exception):
            raise answer
        return answer

    def decide_all_channels_each(self, inputs: Sequence[CustomerInput]) -> list[tuple[Decision, ...] | NbmError | ValueError]:
        """:meth:`decide_all_channels` for each input, with one feature build and one model call for all of
        them (the answers are those of separate calls); an input that cannot be answered gets its error in
        its place."""
        answers: list[tuple[Decision, ...] | NbmError | ValueError | None] = [None] * len(inputs)
        channels = tuple(self._catalog.channel(name) for name in self.channels)
        asked: list[tuple[int, CustomerInput, _Ask, tuple[bool, ...]]] = []
        for at, request in enumerate(inputs):
            try:
                wanted = self._wanted_channels(request.channels)
                if request.decision_ids is not None and len(request.decision_ids) != sum(wanted):
                    raise ValueError(f"{len(request.decision_ids)} decision ids for {sum(wanted)} channels")
                ask = _Ask(str(request.customer_id), request.live_events, self._as_of_ns(request.as_of), channels)
                asked.append((at, request, ask, wanted))
            except (NbmError, ValueError) as exc:
                answers[at] = exc
        if not asked:
            return answers  # type: ignore[return-value]
        # A channel not asked for has no candidate: it takes no topic or offer from the others.
        scored = [replace(one, slates=[slate if keep else slate.emptied() for slate, keep in zip(one.slates, wanted)])
                  for one, (_, _, _, wanted) in zip(self._slates_each([ask for _, _, ask, _ in asked]), asked)]
        fresh = iter(random_ids(len(channels) * sum(request.decision_ids is None for _, request, _, _ in asked)))
        ids = [iter(request.decision_ids) if request.decision_ids is not None else fresh for _, request, _, _ in asked]
        ids = [[next(own) if keep else "" for keep in wanted] for own, (_, _, _, wanted) in zip(ids, asked)]
        explain = [request.explain for _, request, _, _ in asked]
        for (at, _, _, wanted), decisions in zip(asked, self._coordinated(scored, ids, explain)):
            answers[at] = tuple(d for d, keep in zip(decisions, wanted) if keep)
        return answers  # type: ignore[return-value]

    def _wanted_channels(self, names: Sequence[str] | None) -> tuple[bool, ...]:
        """Per channel of :attr:`channels`, whether ``names`` (any case; None: all) asks for it."""
        if names is None:
            return (True,) * len(self.channels)
        asked = {self.channel_name(name) for name in names}
        return tuple(channel in asked for channel in self.channels)

    def channel_name(self, name: str) -> str:
        """The catalog's name of channel ``name`` (any case); :class:`UnknownChannelError` if none."""
        return self._catalog.channel(name).channel

    def _coordinated(self, scored: Sequence[_Scored], ids: Sequence[Sequence[str]], explain: Sequence[bool]) -> list[tuple[Decision, ...]]:
        """Each customer's channels served together, all customers in one coordination
        (:func:`coordinate_each`): a message per channel at most, coordinated across the channels."""
        slates = [slate for one in scored for slate in one.slates]
        sizes = np.array([len(slate.at) for slate in slates], dtype=np.int64)
        n_channels = len(self.channels)
        bounds = np.concatenate([[0], np.cumsum(sizes.reshape(len(scored), n_channels).sum(axis=1))])
        number = np.repeat(np.tile(np.arange(n_channels), len(scored)), sizes)
        codes = np.concatenate([s.messages.code[s.at] for s in slates])
        topic, offer = self._catalog.message_topic_key[codes], self._catalog.message_offer[codes]  # codes: cheaper than names
        priority = np.concatenate([s.priority for s in slates])
        # Channels served together must fit the global caps together, not only one by one (no history was
        # read where no cap is configured, see _slates_each).
        room = np.array([np.inf if one.contact is None else remaining_sends(None, one.contact, one.as_of_ns, self._policy.contact)
                         for one in scored])
        rngs = [[self._rng(i) for i in own] for own in ids] if self._explores else None
        turns = coordinate_each(bounds, number, topic, priority, n_channels, self._policy, rngs, room, offer)
        stamps = {one.as_of_ns: pd.Timestamp(one.as_of_ns, tz="UTC") for one in scored}
        out, offset = [], 0
        for g, (one, own_ids, explained) in enumerate(zip(scored, ids, explain)):
            decisions, stamp = [], stamps[one.as_of_ns]
            for c, (slate, decision_id) in enumerate(zip(one.slates, own_ids)):
                own = slice(offset, offset + len(slate.at))
                offset += len(slate.at)
                suppressed = dict(slate.suppressed)
                served: tuple[ServedMessage, ...] = ()
                pick = int(turns.index[g, c])
                if pick >= 0:
                    served = self._served(slate, one.x, np.array([pick - own.start]), turns.propensity[g, c:c + 1], explained)
                elif len(slate.at):
                    suppressed[turns.reason[g, c]] = len(slate.at)
                best = own.start + int(np.argmax(slate.priority)) if len(slate.at) else -1
                displaced = self._displaced(best, pick, turns.index[g], c, codes, topic, offer) if best != pick else None
                decisions.append(self._decision(decision_id, one.customer_id, one.known, slate, stamp, served, suppressed,
                                                turns.first[own], displaced))
            out.append(tuple(decisions))
        return out

    def _displaced(self, best: int, pick: int, picks: np.ndarray, channel: int, codes: np.ndarray, topic: np.ndarray,
                   offer: np.ndarray) -> Displaced | None:
        """Whether the channel's best candidate ``best`` (not its ``pick``) went unserved because another
        channel of the answer serves its offer or its topic (``picks``: each channel's pick, -1: none)."""
        if best < 0:
            return None
        same_topic_allowed = self._policy.coordination.allow_same_topic_across_channels
        for other_channel, other in enumerate(picks.tolist()):
            if other_channel == channel or other < 0:
                continue
            reason = OFFER_TAKEN if offer[other] == offer[best] else None
            if reason is None and not same_topic_allowed and topic[other] == topic[best]:
                reason = TOPIC_TAKEN
            if reason is not None:
                ids = self._message_ids
                return Displaced(str(ids[codes[best]]), reason, self.channels[other_channel], str(ids[codes[other]]))
        return None

    def features(self, customer_id: str, channel: str, *, as_of: pd.Timestamp,
                 live_events: LiveEvents | None) -> tuple[np.ndarray, FeatureMatrix]:
        """The message ids valid on ``channel`` at ``as_of`` and every one of their features, in float64,
        as a decision computes them before any policy rule (a decision hands the model their float32
        values and may skip the columns it never splits on): for checks and debugging."""
        as_of_ns = self._as_of_ns(as_of)
        messages = self._catalog.channel(channel)
        at = messages.valid(as_of_ns)
        events = self._customers.events_of(str(customer_id), live_events)
        return messages.message_id[at], self._build(events, messages.code[at], as_of_ns, every_column=True)

    # -- steps ---------------------------------------------------------------------------------------

    def _slates_each(self, asks: Sequence[_Ask]) -> list[_Scored]:
        """Each ask's channels through validity, consent, rules and contact policy, with one feature build
        and one model call for all asks (each customer's features from its own events).

        The customers' events are gathered in one log and their consent and complaints read from it at
        once; an ask whose contact policy can only allow every candidate (:func:`passes_everyone`, no rule
        configured: the common case) skips the per-candidate checks and reads no contact history."""
        batch = self._customers.events_of_each([ask.customer_id for ask in asks], [ask.live_events for ask in asks])
        as_of = np.array([ask.as_of_ns for ask in asks], dtype=np.int64)
        standing = batch_standing(batch.log, as_of, len(self._spec.vocab.channels), self._policy.contact)
        valid: dict[tuple[str, int], np.ndarray] = {}  # asks of one batch mostly share their instant
        positions, suppressed = [], []
        for i, ask in enumerate(asks):
            opened = [self._open(messages, ask.as_of_ns, standing.unsubscribed[i], valid) for messages in ask.channels]
            positions.append([at for at, _ in opened])
            suppressed.append([removed for _, removed in opened])
        sizes = [sum(len(at) for at in own) for own in positions]
        codes = [m.code[at] for ask, own in zip(asks, positions) for m, at in zip(ask.channels, own)]
        codes = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int64)
        matrix = self._build_batch(batch, as_of, sizes, codes)
        bounds = np.cumsum([0, *sizes])
        verdicts: list[Verdict | None] = []
        contacts: list[ContactHistory | None] = []
        for i, ask in enumerate(asks):
            if not sizes[i] or (not self._rules_apply and standing.passes_everyone(i, self._policy.contact)):
                verdicts.append(None)  # every candidate allowed; nothing reads the history (no cap either)
                contacts.append(None)
                continue
            events = batch.one(i)
            contacts.append(self._contact_history(events))
            verdicts.append(self._policy_verdict(events, contacts[-1], ask.channels, positions[i],
                                                 matrix.rows(bounds[i], bounds[i + 1]), ask.as_of_ns))
        xs, scores = self._score_rows(matrix.values, bounds, codes)
        pieces = []
        for i, ask in enumerate(asks):
            start, verdict = 0, verdicts[i]
            for messages, at, removed in zip(ask.channels, positions[i], suppressed[i]):
                stop = start + len(at)
                own = None if verdict is None else Verdict(verdict.allowed[start:stop], verdict.reason[start:stop])
                pieces.append((messages, at, removed, own, scores[i][start:stop], start))
                start = stop
        slates = iter(self._scored_slates(pieces))
        return [_Scored(str(batch.customer_ids[i]), bool(batch.known[i]), ask.as_of_ns, contacts[i],
                        [next(slates) for _ in ask.channels], xs[i]) for i, ask in enumerate(asks)]

    def _score_rows(self, values: np.ndarray, bounds: np.ndarray, codes: np.ndarray) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Every row scored in one model call (``values[bounds[i]:bounds[i + 1]]`` are job i's; float32,
        or float64 holding float32 values, which the compiled model reads without a copy): each job's
        rows and scores. Rows a verdict refuses are scored too: gathering the allowed ones would copy
        every job's rows (3 MB at 300 candidates and 8 requests), which cost more than scoring them."""
        scores = self._predict(values, codes)
        return ([values[a:b] for a, b in zip(bounds[:-1], bounds[1:])],
                [scores[a:b] for a, b in zip(bounds[:-1], bounds[1:])])

    def _open(self, messages: ChannelMessages, as_of_ns: int, unsubscribed: np.ndarray,
              valid: dict[tuple[str, int], np.ndarray]) -> tuple[np.ndarray, dict[str, int]]:
        """The channel's messages valid at as_of (``valid`` keeps them per channel and instant), none if the
        customer unsubscribed from it (``unsubscribed``: per channel code, :class:`BatchStanding`), and
        what consent removed."""
        at = valid.get((messages.channel, as_of_ns))
        if at is None:
            at = valid[(messages.channel, as_of_ns)] = messages.valid(as_of_ns)
        if len(at) and unsubscribed[self._channel_code[messages.channel]]:
            return at[:0], {CONSENT: len(at)}
        return at, {}

    def _scored_slates(self, pieces: Sequence[tuple[ChannelMessages, np.ndarray, dict[str, int], Verdict | None, np.ndarray, int]]) -> list[_Slate]:
        """One slate per piece ``(messages, positions, suppressed, verdict, score, first_row)``: a channel's
        candidates, what consent removed, the verdict on them (None: all allowed), the scores of all of
        them and where their rows start in the scored matrix. Priorities for all pieces in one call."""
        if not pieces:
            return []
        kept = [at if verdict is None else at[verdict.allowed] for _, at, _, verdict, _, _ in pieces]
        rows = [first_row + (np.arange(len(at)) if verdict is None else np.flatnonzero(verdict.allowed))
                for _, at, _, verdict, _, first_row in pieces]
        scores = [score if verdict is None else score[verdict.allowed] for _, _, _, verdict, score, _ in pieces]
        score = np.concatenate(scores) if len(pieces) > 1 else scores[0]
        probability = score if self._probability else 1.0 / (1.0 + np.exp(-score))
        levers = self._policy
        value = np.concatenate([m.value[k] for (m, *_), k in zip(pieces, kept)]) if levers.value_exponent > 0 else score
        topic = np.concatenate([m.topic[k] for (m, *_), k in zip(pieces, kept)]) if levers.topic_levers else score
        channel = np.repeat([m.channel for m, *_ in pieces], [len(k) for k in kept]) if levers.channel_levers else score
        priority = arbitration_priority(probability, value, channel, topic, levers)  # the last three read only when configured
        slates, start = [], 0
        for (messages, _, removed, verdict, _, _), own, own_rows, own_score in zip(pieces, kept, rows, scores):
            stop = start + len(own)
            rejected = {} if verdict is None else verdict.counts()
            slates.append(_Slate(messages, own, own_rows, own_score, priority[start:stop], {**removed, **rejected}))
            start = stop
        return slates

    def _choices(self, slates: Sequence[_Slate], ks: Sequence[int], ids: Sequence[str]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per slate: the positions chosen for its first ``k`` slots, their propensities and the first slot's
        distribution (:mod:`engine.policy.exploration`); without exploration, all at once."""
        p = self._policy
        if self._explores:
            choices = []
            for slate, k, decision_id in zip(slates, ks, ids):
                selection = select_with(slate.priority, k, self._rng(decision_id), p)
                choices.append((selection.index, selection.propensity, self._first_slot(slate.priority)))
            return choices
        return greedy_slates([slate.priority for slate in slates], ks)

    def _build(self, events: CustomerEvents, codes: np.ndarray, as_of_ns: int, every_column: bool = False) -> FeatureMatrix:
        """The features of one customer's candidates, float32 values as the model reads them (the columns
        rules read also in float64), those the model never splits on possibly NaN; ``every_column``:
        every feature, in float64 (:meth:`features`)."""
        n = len(codes)
        rows = (np.zeros(n, np.int64), np.full(n, as_of_ns, np.int64), np.asarray(codes, dtype=np.int64), np.full(n, events.profile, np.int64))
        if self._compiled is not None and not every_column:
            return self._compiled.build(events.log, *rows, dtype=np.float64, rounded=True)
        return build_encoded_features(make_history(events.log, self._spec), self._tables, *rows,
                                      dtype=np.float64 if every_column else np.float32, precise=self._precise,
                                      wanted=None if every_column else self._wanted, names=self._feature_names)

    def _build_batch(self, batch: BatchEvents, as_of: np.ndarray, sizes: Sequence[int], codes: np.ndarray) -> FeatureMatrix:
        """Features of each request's candidate codes (``sizes[i]`` rows for request i, customer code i of
        the batch log, at ``as_of[i]``): one pass of the feature code costs about as much for a few
        customers as for one."""
        if not len(codes):
            return FeatureMatrix(self._feature_names, np.zeros((0, len(self._feature_names))))
        request = np.repeat(np.arange(len(sizes), dtype=np.int64), sizes)
        if self._compiled is not None:
            return self._compiled.build(batch.log, request, as_of[request], codes.astype(np.int64), batch.profile[request],
                                        dtype=np.float64, rounded=True)
        return build_encoded_features(make_history(batch.log, self._spec), self._tables, request, as_of[request],
                                      codes.astype(np.int64), batch.profile[request], precise=self._precise, wanted=self._wanted,
                                      names=self._feature_names)

    def _policy_verdict(self, events: CustomerEvents, contact: ContactHistory, channels: Sequence[ChannelMessages],
                        positions: list[np.ndarray], matrix: FeatureMatrix, as_of_ns: int) -> Verdict:
        n = sum(len(at) for at in positions)
        verdict = Verdict(np.ones(n, dtype=bool), np.full(n, "", dtype=object))
        if not self._rules_apply and passes_everyone(contact, as_of_ns, self._policy.contact):
            return verdict  # the common case: nothing to check, no candidate arrays to build
        channel = np.concatenate([np.full(len(at), m.channel) for m, at in zip(channels, positions)])
        message_id = np.concatenate([m.message_id[at] for m, at in zip(channels, positions)])
        topic = np.concatenate([m.topic[at] for m, at in zip(channels, positions)])
        offer = np.concatenate([m.offer[at] for m, at in zip(channels, positions)]) if self._offers_shared else None
        if self._rules_apply:  # rules_verdict costs pandas calls even with nothing configured
            # Customer-level features are the same on every row: read them from the first.
            stage = np.full(n, matrix.precise[JOURNEY_STAGE][0])
            attributes = self._customers.attributes(events.profile, n)
            attributes[DAYS_SINCE_PURCHASE] = np.full(n, matrix.precise[DAYS_SINCE_PURCHASE][0])
            stages = np.concatenate([m.stage[at] for m, at in zip(channels, positions)])
            verdict = rules_verdict(message_id, topic, stages, stage, attributes, self._policy)
        return verdict.then(contact_verdict(channel, message_id, topic, contact, as_of_ns, self._policy.contact, offer))

    def _contact_history(self, events: CustomerEvents) -> ContactHistory:
        return ContactHistory.from_log(events.log, self._spec.vocab, self._catalog.message_topic,
                                       impressions=self._contact_reads_impressions, message_offer=self._catalog.message_offer)

    def _predict(self, x: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """Scores of the rows of ``x``, the features of the messages of vocabulary ``codes``."""
        if not len(x):
            return np.zeros(0)
        if self._scorer is not None:
            return np.asarray(self._scorer.score(x, self._message_ids[codes]), dtype=np.float64)
        return self.bundle.predictor.predict(x)

    def _served(self, slate: _Slate, x: np.ndarray, index: np.ndarray, propensity: np.ndarray,
                explain: bool) -> tuple[ServedMessage, ...]:
        """The slate's candidates at ``index``, in that order, as served messages."""
        reasons: list[tuple[Reason, ...]] = [()] * len(index)
        if explain and len(index):
            rows = x[slate.rows[index]]
            contrib = self.bundle.booster.predict(rows, pred_contrib=True, num_threads=1)
            column = self._feature_column
            reasons = [tuple(Reason(c.feature, c.label, c.value, _known(values[column[c.feature]])) for c in row)
                       for values, row in zip(rows, top_contributions(contrib, self._feature_names, self._labels, EXPLAIN_TOP))]
        ids = [str(slate.messages.message_id[slate.at[i]]) for i in index.tolist()]
        return tuple(ServedMessage(message_id, str(slate.messages.topic[slate.at[i]]), float(slate.score[i]), float(slate.priority[i]),
                                   float(p), why, self.catalog[message_id])
                     for message_id, i, p, why in zip(ids, index.tolist(), propensity.tolist(), reasons))

    def _decision(self, decision_id: str, customer_id: str, known: bool, slate: _Slate, as_of: pd.Timestamp,
                  served: tuple[ServedMessage, ...], suppressed: dict[str, int], first: np.ndarray,
                  displaced: Displaced | None = None) -> Decision:
        candidates = ScoredCandidates(slate.messages.message_id[slate.at], slate.score.astype(np.float64),
                                      np.asarray(first, dtype=np.float64))
        return Decision(decision_id, customer_id, slate.messages.channel, as_of,
                        self.model_version, not known, served, dict(sorted(suppressed.items())), candidates, displaced)

    def _first_slot(self, priority: np.ndarray) -> np.ndarray:
        if not len(priority):
            return np.zeros(0)
        p = self._policy
        return slot_distribution(priority, p.exploration, p.exploration_rate, p.softmax_temperature)

    @property
    def _explores(self) -> bool:
        return self._policy.exploration != "none" and self._policy.exploration_rate != 0.0

    def _rng(self, decision_id: str) -> np.random.Generator | None:
        """The decision's own generator; None when the policy never draws (no exploration): seeding one
        costs more than the rest of a decision's choice."""
        return self._seeded_rng(decision_id) if self._explores else None

    def _seeded_rng(self, decision_id: str) -> np.random.Generator:
        # A stable hash (Python's hash() is salted per process) so that a decision replays anywhere.
        digest = int.from_bytes(hashlib.blake2b(decision_id.encode(), digest_size=8).digest(), "little")
        return np.random.default_rng([self.seed, digest])

    def _as_of_ns(self, as_of: pd.Timestamp) -> int:
        stamp = pd.Timestamp(as_of)
        if stamp.tzinfo is None:
            raise ValueError(f"as_of must carry a time zone (UTC), got {stamp.isoformat()}")
        as_of_ns = int(stamp.value)  # ns since the epoch in UTC, whatever the zone it is shown in
        if as_of_ns < self.bundle.state.cutoff_ns:  # the check costs an array: made only when it fails
            self.bundle.state.check_as_of(np.array([as_of_ns]))
        return as_of_ns

    def _check_features(self) -> None:
        """Fail at load, not on the first request, if the definitions do not give every feature the model
        reads, customer-level ones first (as every matrix orders them)."""
        try:
            customer, candidate = self._spec.features.level_of(self._feature_names)
        except UnknownFeatures as exc:
            raise ModelMismatchError(f"model {self.model_version} needs features this nbm does not define "
                                     f"(missing {list(exc.names[:5])}): the bundle needs this nbm's feature code") from None
        if (*customer, *candidate) != self._feature_names:
            raise ModelMismatchError(f"model {self.model_version} lists candidate features before customer ones: "
                                     "it was not trained by this nbm")


def _known(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
