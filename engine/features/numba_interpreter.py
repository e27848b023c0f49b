"""The feature definitions computed by numba for the API's batches: a few customers, a few hundred
candidate rows, in one compiled pass. The matrix is :func:`engine.features.build.build_encoded_features`'
(the numpy interpreter's) to the bit: tests/features/test_interpreters.py holds them equal.

:func:`compile_features` translates the resolved terms (engine/features/definitions/groups.py) into two
instruction tables, one row per distinct customer-level term and one per candidate column; the compiled
loops below run them. Per customer, one pass over its few dozen events fills small tables: weighted counts
per window, event type and code (channel, topic or journey stage), value sums per window and type, the
last event of each type, decayed weights per window, type and code. The instructions read them and do
the terms' arithmetic with the numpy interpreter's numbers: the window rule ``0 < as_of - ts <= window``;
each cell summed in event order, as ``bincount`` sums; value sums in History's fixed point; decayed weights
split at the epoch, with the exponentials computed by numpy. Nothing is compiled with fast-math, so no
multiply-add is fused.

A term this interpreter does not compute (a per-candidate count of other events than impressions) is
refused when the engine is built (:class:`NotCompiled`), naming the feature: the engine's
``interpreter="numpy"`` computes every term.

Imported only by the decision engine (numba takes a fraction of a second to import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.contract.schema import JOURNEY_STAGES
from engine.features.definitions import terms as t
from engine.features.build import EncodedTables, FeatureMatrix, _pairs
from engine.features.log import EVENT_CODE, EventLog
from engine.features.numba_loops import (
    COUNT, DAYS, DECAYED, DETRACTOR, DIFFERENCE, LAST_VALUE, PROMOTER, R_CHANNEL, R_DAYS_SINCE_SHOWN, R_DAYS_SINCE_VALID_FROM,
    R_GAP, R_MESSAGE_ATTRIBUTE, R_OFFER_IMPRESSIONS, R_PICK, R_PROFILE_ATTRIBUTE, R_RANK, R_SEEN_COUNT, R_STAGE, R_STAGE_GAP,
    R_STAGE_MATCH, R_TOPIC, R_TOPIC_DAYS_SINCE_SHOWN, R_UNASKED, R_VALUE, RATE, SHARE, STAGE, VALUE_SUM, decay_exponents,
    fill_rows, count_impressions, count_offer_impressions, run_instructions,
)
from engine.timeutil import NS_PER_DAY


class NotCompiled(ValueError):
    """A feature this interpreter does not compute."""


BY_CODE = {None: 0, "channel": 1, "topic": 2, "stage": 3}
_SOURCES = {"channel": 0, "topic": 1, "stage": 2}
_LIFETIME = np.iinfo(np.int64).max
# Fields of a customer instruction (int64): op, target column, types mask, window, by, code, inputs a..e.
_CUSTOMER_FIELDS = 11
# Fields of a row instruction: op, the code it reads (SOURCE), where its customer columns are in LINES
# and how many, where its attribute values are in DATA and how many, whether an attribute is a date, the
# window of a per-offer count.
_ROW_FIELDS = 8
_IMPRESSION_ONLY = ("impression",)
UNASKED = object()  # in place of a costly term the model never reads: the column is left NaN


@dataclass(frozen=True, eq=False)
class CustomerProgram:
    code: np.ndarray  # (instructions, _CUSTOMER_FIELDS), in the order to run them
    constants: np.ndarray  # (instructions, 2): f0, f1
    columns: int  # rows of the block the instructions write
    outputs: np.ndarray  # the block row of each customer-level column of the matrix, in its order
    count_limits: np.ndarray  # per count window: its length in ns (lifetime: the int64 maximum)
    decay_limits: np.ndarray
    epoch_ns: int
    tau_ns: float
    message_stage: np.ndarray
    codes: int  # the most codes of any dimension: the width of the loops' tables


@dataclass(frozen=True, eq=False)
class RowProgram:
    code: np.ndarray
    lines: np.ndarray  # block rows read by PICK/GAP/RANK instructions
    data: np.ndarray  # attribute values, per attribute instruction
    channel: np.ndarray  # the catalog, per message code (as CatalogTable)
    topic: np.ndarray
    stage: np.ndarray
    value: np.ndarray
    valid_from_ns: np.ndarray
    stage_column: int  # the block row of journey_stage (-1: not read)
    messages: int
    topics: int
    message_offer: np.ndarray
    offer_limits: np.ndarray


class _CustomerCompiler:
    """One instruction per distinct term, after the terms it reads; a Column is its feature's term."""

    def __init__(self, terms: Mapping[str, t.Term], max_window_days: int) -> None:
        self._terms = terms
        self._max_window = max_window_days
        self.rows: list[tuple[list[int], tuple[float, float]]] = []
        self.row_of: dict[t.Term, int] = {}
        self.count_windows: list[int | None] = []
        self.decay_windows: list[int] = []

    def column(self, name: str) -> int:
        return self.term(self._terms[name])

    def term(self, term: t.Term) -> int:
        if isinstance(term, t.Column):
            return self.column(term.name)
        if term not in self.row_of:
            fields, constants = self._fields(term)
            self.rows.append((fields, constants))
            self.row_of[term] = len(self.rows) - 1
        return self.row_of[term]

    def _fields(self, term: t.Term) -> tuple[list[int], tuple[float, float]]:
        none = (0.0, 0.0)
        if isinstance(term, t.Count):
            return self._read(COUNT, term.types, self._window(term.window, self.count_windows), term.per, term.code), none
        if isinstance(term, t.Decayed):
            return self._read(DECAYED, term.types, self._window(term.window, self.decay_windows), term.per, term.code), none
        if isinstance(term, t.DaysSince):
            return self._read(DAYS, term.types, 0, None, None), none
        if isinstance(term, t.LastValue):
            return self._read(LAST_VALUE, term.types, 0, None, None), none
        if isinstance(term, t.Sum):
            return self._read(VALUE_SUM, term.types, self._window(term.window, self.count_windows), None, None), none
        if isinstance(term, t.Rate):
            return self._derive(RATE, term.responses, term.exposures), (term.strength * term.prior_rate, term.strength)
        if isinstance(term, t.Share):
            return self._derive(SHARE, term.part, term.total), none
        if isinstance(term, t.Difference):
            return self._derive(DIFFERENCE, term.a, term.b), none
        if isinstance(term, t.Stage):
            return self._derive(STAGE, term.purchases_ever, term.purchases_long, term.conversions_short, term.visits_short,
                                term.clicks_short), none
        if isinstance(term, t.NpsGroup):
            return self._derive(DETRACTOR if term.group == "detractor" else PROMOTER, term.score), none
        raise NotCompiled(f"{type(term).__name__} is not a customer-level term")

    def _window(self, window: int | None, windows: list) -> int:
        if window is not None and window > self._max_window:
            raise ValueError(f"window {window} d is longer than the longest configured window")
        if window not in windows:
            windows.append(window)
        return windows.index(window)

    @staticmethod
    def _read(op: int, types: tuple[str, ...], window: int, per: str | None, code: int | None) -> list[int]:
        mask = 0
        for kind in types:
            mask |= 1 << EVENT_CODE[kind]
        return [op, -1, mask, window, BY_CODE[per], 0 if code is None else int(code), 0, 0, 0, 0, 0]

    def _derive(self, op: int, *inputs: t.Term) -> list[int]:
        columns = [self.term(term) for term in inputs]
        return [op, -1, 0, 0, 0, 0, *columns, *([0] * (5 - len(columns)))]


def compile_features(tables: EncodedTables, names: Sequence[str], wanted: frozenset[str] | None,
                     precise: Sequence[str] = ()) -> CompiledFeatures:
    """The instructions for the columns ``names`` of ``tables.spec``'s features (customer-level first, as
    the numpy interpreter orders them); ``wanted`` and ``precise`` as in build_encoded_features."""
    spec, catalog = tables.spec, tables.catalog
    features = spec.features
    customer_names, row_names = features.level_of(names)
    terms = features.terms
    compiler = _CustomerCompiler(terms, spec.settings.max_window_days)
    outputs = [compiler.column(name) for name in customer_names]
    precise_rows = {name: compiler.column(name) for name in precise}
    rows = _RowCompiler(compiler, tables)
    for name in row_names:
        term = terms[name]
        try:
            rows.add(name, UNASKED if isinstance(term, t.COSTLY_TERMS) and wanted is not None and name not in wanted else term)
        except NotCompiled as exc:
            raise NotCompiled(f"feature {name}: {exc}") from None
    customer = compiler.rows
    code = np.zeros((len(customer), _CUSTOMER_FIELDS), dtype=np.int64)
    constants = np.zeros((len(customer), 2), dtype=np.float64)
    for row, (fields, floats) in enumerate(customer):
        code[row] = fields
        code[row, 1] = row  # each instruction writes its own block row
        constants[row] = floats
    vocab = spec.vocab
    program = CustomerProgram(
        code, constants, len(customer), np.asarray(outputs, dtype=np.int64),
        np.array([_LIFETIME if w is None else w * NS_PER_DAY for w in compiler.count_windows], dtype=np.int64),
        np.array([w * NS_PER_DAY for w in compiler.decay_windows], dtype=np.int64),
        int(spec.settings.max_window_days) * NS_PER_DAY, float(spec.settings.affinity_half_life_days) * NS_PER_DAY / np.log(2.0),
        np.asarray(spec.message_stages, dtype=np.int64), max(len(vocab.channels), len(vocab.topics), len(JOURNEY_STAGES), 1))
    return CompiledFeatures((*customer_names, *row_names), program, rows.program(), precise_rows)


class _RowCompiler:
    def __init__(self, customer: _CustomerCompiler, tables: EncodedTables) -> None:
        self._customer = customer
        self._tables = tables
        self.code: list[list[int]] = []
        self.lines: list[int] = []
        self.data: list[np.ndarray] = []
        self._data_length = 0
        self.stage_column = -1
        self.offer_windows: list[int] = []

    def add(self, name: str, term) -> None:
        if term is UNASKED:
            self._emit(R_UNASKED)
        elif isinstance(term, t.MessageFact):
            self._emit({"channel": R_CHANNEL, "topic": R_TOPIC, "stage": R_STAGE, "value": R_VALUE,
                        "days_since_valid_from": R_DAYS_SINCE_VALID_FROM}[term.fact])
        elif isinstance(term, t.CandidateCount) and term.types == _IMPRESSION_ONLY and term.of == "message" and term.window is None:
            self._emit(R_SEEN_COUNT)
        elif isinstance(term, t.CandidateCount) and term.types == _IMPRESSION_ONLY and term.of == "offer" and term.window is not None:
            if term.window not in self.offer_windows:
                self.offer_windows.append(term.window)
            self._emit(R_OFFER_IMPRESSIONS, window=self.offer_windows.index(term.window))
        elif isinstance(term, t.CandidateDaysSince) and term.types == _IMPRESSION_ONLY:
            self._emit(R_DAYS_SINCE_SHOWN if term.of == "message" else R_TOPIC_DAYS_SINCE_SHOWN)
        elif isinstance(term, (t.Pick, t.Gap, t.Rank)):
            at = len(self.lines)
            self.lines.extend(self._customer.column(column) for column in term.columns)
            op = R_PICK if isinstance(term, t.Pick) else R_GAP if isinstance(term, t.Gap) else R_RANK
            self._emit(op, source=_SOURCES[term.of], lines_at=at, width=len(term.columns))
        elif isinstance(term, t.StageFit):
            self.stage_column = self._customer.column("journey_stage")
            self._emit(R_STAGE_MATCH if term.how == "match" else R_STAGE_GAP)
        elif isinstance(term, t.Attribute):
            table = self._tables.attributes.profile if term.source == "profile" else self._tables.attributes.message
            encoded = np.asarray(table[term.column], dtype=np.float64)
            self._emit(R_PROFILE_ATTRIBUTE if term.source == "profile" else R_MESSAGE_ATTRIBUTE,
                       data_at=self._data_length, data_length=len(encoded), relative=int(term.is_date))
            self.data.append(encoded)
            self._data_length += len(encoded)
        else:
            raise NotCompiled(f"{term!r} is not computed by the numba interpreter (the numpy interpreter computes it)")

    def _emit(self, op: int, *, source: int = 0, lines_at: int = 0, width: int = 0, data_at: int = 0, data_length: int = 0,
              relative: int = 0, window: int = 0) -> None:
        self.code.append([op, source, lines_at, width, data_at, data_length, relative, window])

    def program(self) -> RowProgram:
        tables = self._tables
        catalog, vocab = tables.catalog, tables.spec.vocab
        return RowProgram(np.array(self.code, dtype=np.int64).reshape(-1, _ROW_FIELDS), np.array(self.lines, dtype=np.int64),
                          np.concatenate([np.zeros(0), *self.data]), np.asarray(catalog.channel, dtype=np.int64),
                          np.asarray(catalog.topic, dtype=np.int64), np.asarray(catalog.stage, dtype=np.int64),
                          np.asarray(catalog.value, dtype=np.float64), np.asarray(catalog.valid_from_ns, dtype=np.float64),
                          self.stage_column, len(vocab.messages), len(vocab.topics), np.asarray(catalog.offer, dtype=np.int64),
                          np.array([w * NS_PER_DAY for w in self.offer_windows], dtype=np.int64))


class CompiledFeatures:
    """:func:`engine.features.build.build_encoded_features` for the engine's batches, compiled: the
    customer program for each (customer, as_of) pair, then each row's columns written straight into the
    matrix. Made by :func:`compile_features`."""

    def __init__(self, names: tuple[str, ...], customers: CustomerProgram, rows: RowProgram, precise: Mapping[str, int]) -> None:
        self.names = names
        self.customers, self.rows = customers, rows
        self._precise = dict(precise)
        ops = rows.code[:, 0]
        # The costly row columns (the candidate's impressions) are computed only when the model reads them.
        self.reads_impressions = bool(np.isin(ops, (R_SEEN_COUNT, R_DAYS_SINCE_SHOWN, R_TOPIC_DAYS_SINCE_SHOWN)).any())
        self.reads_offers = bool(np.isin(ops, (R_OFFER_IMPRESSIONS,)).any())

    def build(self, log: EventLog, customer: np.ndarray, as_of: np.ndarray, message: np.ndarray, profile: np.ndarray,
              *, dtype: type = np.float32, rounded: bool = False) -> FeatureMatrix:
        """The matrix of these request rows (customer codes of ``log``, as_of in ns, message codes, profile
        rows), with the precise columns it was compiled with in float64. ``rounded``: the values of the
        float32 matrix, held in ``dtype`` (float64: what the compiled model reads, without a copy)."""
        customer, as_of = np.asarray(customer, dtype=np.int64), np.asarray(as_of, dtype=np.int64)
        pair, pair_customer, pair_as_of = _pairs(customer, as_of)
        block = run_program(self.customers, log, pair_customer, pair_as_of)
        rows = self.rows
        pairs = len(pair_customer)
        if self.reads_impressions:
            seen = np.zeros((pairs, rows.messages))
            last_message = np.full((pairs, rows.messages), -1, dtype=np.int64)
            last_topic = np.full((pairs, rows.topics), -1, dtype=np.int64)
            count_impressions(EVENT_CODE["impression"], log.customer, log.ts, log.event_type, log.topic, log.message, log.weight,
                         pair_customer, pair_as_of, rows.messages, rows.topics, seen, last_message, last_topic)
        else:
            seen, last_message, last_topic = np.zeros((0, 0)), np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0), dtype=np.int64)
        offers = np.zeros((pairs, len(rows.offer_limits), rows.messages) if self.reads_offers else (0, 0, 0))
        if self.reads_offers:
            count_offer_impressions(EVENT_CODE["impression"], log.customer, log.ts, log.event_type, log.message, log.weight,
                               rows.message_offer, rows.offer_limits, pair_customer, pair_as_of, offers)
        values = np.empty((len(customer), len(self.names)), dtype=dtype)
        fill_rows(rows.code, rows.lines, rows.data, rows.channel, rows.topic, rows.stage, rows.value, rows.valid_from_ns,
                   rows.stage_column, block, self.customers.outputs, pair, np.asarray(message, dtype=np.int64),
                   np.asarray(profile, dtype=np.int64), as_of, log.ts, seen, last_message, last_topic, rows.message_offer, offers,
                   rounded, values)
        return FeatureMatrix(self.names, values, {name: block[row][pair] for name, row in self._precise.items()})


def run_program(program: CustomerProgram, log: EventLog, customer: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """The program's block for each request ``(customer[i], as_of[i])`` (customer codes of ``log``): float64,
    shape (program.columns, requests)."""
    customer = np.asarray(customer, dtype=np.int64)
    as_of = np.asarray(as_of, dtype=np.int64)
    limits = program.decay_limits
    # The decayed counts' exponentials are numpy's, as the numpy interpreter computes them (numpy's exp and
    # the compiled one may differ in the last bit): their arguments compiled, then one np.exp for all.
    powers = decay_exponents(log.ts, as_of, limits, program.epoch_ns, program.tau_ns)
    np.exp(powers, out=powers)
    out = np.empty((program.columns, len(customer)), dtype=np.float64)
    run_instructions(program.code, program.constants, program.count_limits, limits, program.epoch_ns, program.message_stage,
         program.codes, log.customer, log.ts, log.event_type, log.channel, log.topic, log.message, log.value, log.weight,
         powers, customer, as_of, out)
    return out
