"""The single path from requests to a feature matrix with numpy, used by training, batch scoring and
explanations (the API builds its matrices with :mod:`engine.features.numba_interpreter`, to the same bits).

A request is ``(customer_id, as_of[, message_id])``. Customer-level features are computed once per
distinct (customer, as_of) and broadcast to that pair's candidate rows. The features are the spec's
(engine/features/definitions/groups.py), all of them or the ``names`` a model reads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.contract.schema import JOURNEY_STAGES
from engine.features.history import NS_PER_DAY, History, Requests
from engine.features.log import EventLog
from engine.features.numpy_interpreter import Candidates, Columns, CustomerColumns, RowInputs, candidate_columns
from engine.features.partitions import customer_partitions
from engine.features.spec import FeatureSpec
from engine.features.vocab import Vocabulary
from engine.features.workers import LookupThreads
from engine.timeutil import to_ns


@dataclass(frozen=True, eq=False)
class FeatureMatrix:
    """One row per request, one column per feature (NaN = unknown); column names say what they are.
    ``precise``: some columns again, one float64 value per row, for readers that compare them whatever
    the matrix's dtype (policy rules read the days since purchase of the float32 matrix a model scores)."""

    names: tuple[str, ...]
    values: np.ndarray
    precise: Mapping[str, np.ndarray] = field(default_factory=dict)

    def to_frame(self) -> pd.DataFrame:
        return pd.DataFrame(self.values, columns=list(self.names))

    def rows(self, start: int, stop: int) -> FeatureMatrix:
        """Rows ``start:stop`` (views)."""
        return FeatureMatrix(self.names, self.values[start:stop], {name: column[start:stop] for name, column in self.precise.items()})


@dataclass(frozen=True, eq=False)
class CatalogTable:
    """The message catalog encoded once: rows in the order of the spec's message vocabulary."""

    channel: np.ndarray
    topic: np.ndarray
    stage: np.ndarray
    value: np.ndarray
    valid_from_ns: np.ndarray
    attributes: pd.DataFrame
    # The spec's offer code of each message (FeatureSpec.message_offers); empty when no offer is shared:
    # then there are no per-offer columns.
    offer: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    @classmethod
    def from_messages(cls, messages: pd.DataFrame, spec: FeatureSpec) -> CatalogTable:
        by_id = messages.set_index("message_id").reindex(list(spec.vocab.messages.values))
        valid_from = by_id["valid_from"]
        ns = valid_from.astype("datetime64[ns, UTC]").array.asi8.astype(np.float64)
        ns[valid_from.isna().to_numpy()] = np.nan
        return cls(
            channel=spec.vocab.channels.encode(by_id["channel"]),
            topic=spec.vocab.topics.encode(by_id["topic"]),
            stage=Vocabulary(JOURNEY_STAGES).encode(by_id["journey_stage"]),
            value=by_id["value"].to_numpy(dtype=np.float64, na_value=np.nan),
            valid_from_ns=ns,
            attributes=by_id.reset_index(),
            offer=np.asarray(spec.message_offers, dtype=np.int64),
        )


@dataclass(frozen=True, eq=False)
class ProfileTable:
    """Customer profiles keyed by customer_id (customers without one get NaN attributes)."""

    ids: Vocabulary
    frame: pd.DataFrame

    @classmethod
    def from_customers(cls, customers: pd.DataFrame) -> ProfileTable:
        ids = Vocabulary(tuple(customers["customer_id"].astype(str)))
        return cls(ids, customers.reset_index(drop=True))


# Requests per chunk: small enough that a chunk's indexes and temporaries stay in cache and in the
# allocator's reused memory, large enough that per-chunk overhead is amortised.
CHUNK_ROWS = 50_000


def build_features(
    requests: pd.DataFrame,
    history: History,
    catalog: CatalogTable,
    profiles: ProfileTable,
    spec: FeatureSpec,
    *,
    dtype: type = np.float32,
    chunk_rows: int = CHUNK_ROWS,
    on_rows: Callable[[int, int], None] | None = None,
    names: Sequence[str] | None = None,
) -> FeatureMatrix:
    """Features of each request row (``customer_id``, ``as_of``, optional ``message_id``): every feature
    of the spec, or ``names`` (customer-level ones first, then candidate-level, each in the order given).

    Rows are processed in chunks of consecutive customers (sorted by customer, then as_of), which keeps
    temporary memory bounded and every history look-up in sorted order. ``on_rows(done, total)`` hears
    after each chunk how many of the rows are built (a progress bar).
    """
    customer = history.log.customers.encode(requests["customer_id"]).astype(np.int64)
    as_of = to_ns(requests["as_of"])
    message = (
        spec.vocab.messages.encode(requests["message_id"]).astype(np.int64)
        if "message_id" in requests.columns
        else np.full(len(requests), -1, dtype=np.int64)
    )
    profile = profiles.ids.encode(requests["customer_id"]).astype(np.int64)
    attributes = _AttributeTables.build(catalog, profiles, spec)
    split = spec.features.level_of(spec.features.names if names is None else names)
    order = np.lexsort((as_of, customer))
    # Requests that come sorted (as training sorts them) are written in place, not scattered.
    in_order = bool(np.all(order[1:] > order[:-1]))
    values: np.ndarray | None = None
    names: tuple[str, ...] = ()
    # Indexes over just each chunk's customers: their size, and the memory they take, follow the chunk.
    for start, stop, part in customer_partitions(history, customer[order], chunk_rows):
        rows = order[start:stop]
        per_pair, pair, row_columns, _ = _chunk_parts(part, catalog, spec, attributes, customer[rows], as_of[rows], message[rows],
                                                      profile[rows], split)
        identity = len(pair) == len(next(iter(per_pair.values()), pair))  # every row its own pair: no gather needed
        columns: Columns = {name: column if identity else column[pair] for name, column in per_pair.items()}
        columns.update(row_columns)
        if values is None:
            names = tuple(columns)
            # Row-major: a block of rows (a split of the training examples) is then a contiguous view that
            # LightGBM reads without copying; a column-major matrix would be copied whole.
            values = np.empty((len(requests), len(names)), dtype=dtype)
        values[slice(start, stop) if in_order else rows] = _rows(columns, names, len(rows), dtype)
        if on_rows is not None:
            on_rows(stop, len(requests))
    assert values is not None
    return FeatureMatrix(names, values)


def _chunk_parts(
    history: History,
    catalog: CatalogTable,
    spec: FeatureSpec,
    attributes: _AttributeTables,
    customer: np.ndarray,
    as_of: np.ndarray,
    message: np.ndarray,
    profile: np.ndarray,
    split: tuple[tuple[str, ...], tuple[str, ...]],
    wanted: frozenset[str] | None = None,
) -> tuple[Columns, np.ndarray, Columns, CustomerColumns]:
    """(customer-level columns per distinct (customer, as_of) pair, each row's pair, per-row columns) of
    ``split``'s (customer-level, candidate-level) names, and every customer-level column on demand.
    ``wanted``: the columns the caller reads (None: all); a costly candidate column it does not read may be
    left NaN."""
    pair, pair_customer, pair_as_of = _pairs(customer, as_of)
    terms = spec.features.terms
    per_customer = CustomerColumns(terms, history, Requests(pair_customer, pair_as_of))
    per_pair = {name: per_customer.column(name) for name in split[0]}
    rows = RowInputs(Requests(customer, as_of), _candidates(message, catalog), per_customer, pair, profile,
                     attributes.profile, attributes.message)
    return per_pair, pair, candidate_columns(terms, split[1], history, rows, wanted), per_customer


@dataclass(frozen=True, eq=False)
class _AttributeTables:
    """Profile and message attributes encoded once per profile / catalog row: column -> values."""

    profile: dict[str, np.ndarray]
    message: dict[str, np.ndarray]

    @classmethod
    def build(cls, catalog: CatalogTable, profiles: ProfileTable, spec: FeatureSpec) -> _AttributeTables:
        def encode(frame: pd.DataFrame, encoders) -> dict[str, np.ndarray]:
            table = {}
            for e in encoders:
                column = frame[e.column] if e.column in frame.columns else pd.Series([None] * len(frame), dtype=object)
                table[e.column] = e.encode(column.reset_index(drop=True))
            return table

        return cls(encode(profiles.frame, spec.profile_encoders), encode(catalog.attributes, spec.message_encoders))


def _candidates(message: np.ndarray, catalog: CatalogTable) -> Candidates:
    has = message >= 0
    at = np.maximum(message, 0)

    def take(array: np.ndarray, missing: float) -> np.ndarray:
        return np.where(has, array[at], missing) if len(array) else np.full(len(message), missing)

    return Candidates(
        message=message,
        channel=take(catalog.channel, -1).astype(np.int64),
        topic=take(catalog.topic, -1).astype(np.int64),
        stage=take(catalog.stage, -1).astype(np.int64),
        value=take(catalog.value, np.nan),
        valid_from_ns=take(catalog.valid_from_ns, np.nan),
        offer=take(catalog.offer, -1).astype(np.int64) if len(catalog.offer) else None,
    )


def _pairs(customer: np.ndarray, as_of: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Distinct (customer, as_of) pairs, and for each row the index of its pair."""
    if len(customer) == 0:
        return np.zeros(0, dtype=np.int64), customer, as_of
    # Serving hands the rows in (customer, as_of) order already (a run of rows per request): no sort then.
    rising = (customer[1:] > customer[:-1]) | ((customer[1:] == customer[:-1]) & (as_of[1:] >= as_of[:-1]))
    order = None if rising.all() else np.lexsort((as_of, customer))
    c, t = (customer, as_of) if order is None else (customer[order], as_of[order])
    new = np.ones(len(c), dtype=bool)
    new[1:] = (c[1:] != c[:-1]) | (t[1:] != t[:-1])
    pair_sorted = np.cumsum(new) - 1
    if order is None:
        return pair_sorted, c[new], t[new]
    pair = np.empty(len(c), dtype=np.int64)
    pair[order] = pair_sorted
    return pair, c[new], t[new]



@dataclass(frozen=True, eq=False)
class EncodedTables:
    """What :func:`build_features` derives from the catalog and the profiles on every call, derived once:
    serving builds the features of one customer per request and cannot pay that per request."""

    catalog: CatalogTable
    spec: FeatureSpec
    attributes: _AttributeTables

    @classmethod
    def build(cls, catalog: CatalogTable, profiles: ProfileTable, spec: FeatureSpec) -> EncodedTables:
        return cls(catalog, spec, _AttributeTables.build(catalog, profiles, spec))


def build_encoded_features(history: History, tables: EncodedTables, customer: np.ndarray, as_of_ns: np.ndarray,
                           message: np.ndarray, profile: np.ndarray, *, dtype: type = np.float32,
                           precise: Sequence[str] = (), wanted: frozenset[str] | None = None,
                           names: Sequence[str] | None = None) -> FeatureMatrix:
    """:func:`build_features` for requests already encoded, without pandas: customer codes of
    ``history.log`` (-1: unknown), ``as_of`` in ns, message codes of the spec (-1: none) and profile rows
    (-1: none). The same columns and values; assembled as blocks, not column by column, because the
    engine calls it for a few dozen rows at a time. The customer-level columns named in ``precise`` are
    also kept in float64 (:attr:`FeatureMatrix.precise`); a costly candidate column not in ``wanted``
    (None: all) may be left NaN."""
    features = tables.spec.features
    per_pair, pair, row_columns, per_customer = _chunk_parts(
        history, tables.catalog, tables.spec, tables.attributes, np.asarray(customer, dtype=np.int64),
        np.asarray(as_of_ns, dtype=np.int64), np.asarray(message, dtype=np.int64), np.asarray(profile, dtype=np.int64),
        features.level_of(features.names if names is None else names), wanted)
    names = (*per_pair, *row_columns)
    values = np.empty((len(message), len(names)), dtype=dtype)
    if per_pair:
        # One array of the pair columns (rows: columns), in the matrix's dtype so that each row is a plain
        # copy; np.column_stack costs several times more here.
        _gather_rows(np.array(list(per_pair.values()), dtype=dtype).T, pair, out=values[:, : len(per_pair)])
    if row_columns:
        # Column by column into a block of columns, then one transposed copy: a column written straight
        # into the row-major matrix touches every row's cache line, which is slower.
        values[:, len(per_pair):] = np.array(list(row_columns.values()), dtype=dtype).T
    kept = {name: per_customer.column(name)[pair] for name in precise}
    return FeatureMatrix(names, values, kept)


# Up to this many runs of one pair, rows are written a run at a time (see _gather_rows).
_MAX_RUNS = 64


def _gather_rows(block: np.ndarray, pair: np.ndarray, out: np.ndarray) -> None:
    """``out[i] = block[pair[i]]``. Serving's rows come in runs of one pair (a customer's candidates):
    a broadcast per run writes each row once, where a gather builds the rows and then copies them, which is
    slower."""
    starts = np.flatnonzero(np.diff(pair, prepend=-1))
    if len(starts) > _MAX_RUNS:
        out[:] = block[pair]
        return
    for start, stop in zip(starts.tolist(), [*starts[1:].tolist(), len(pair)]):
        out[start:stop] = block[pair[start]]


def _rows(columns: Columns, names: tuple[str, ...], n: int, dtype: type) -> np.ndarray:
    """The columns as one row-major block of ``n`` rows, in ``names`` order."""
    block = np.empty((n, len(names)), dtype=dtype)
    for j, name in enumerate(names):
        block[:, j] = columns[name]
    return block


def _key_widths(spec: FeatureSpec) -> dict[str, int]:
    vocab = spec.vocab
    # Offer codes are message codes (the first message of each offer): as many as messages at most.
    return {"channel": len(vocab.channels), "topic": len(vocab.topics), "message": len(vocab.messages), "stage": len(JOURNEY_STAGES),
            "offer": len(vocab.messages)}


def make_history(log: EventLog, spec: FeatureSpec, workers: LookupThreads | None = None) -> History:
    """A :class:`History` over ``log`` with the key widths and windows of ``spec``; its look-ups on
    ``workers`` (default: ``spec``'s ``num_threads`` threads of its own)."""
    return History(
        log,
        _key_widths(spec),
        max_window_days=spec.settings.max_window_days,
        half_life_days=spec.settings.affinity_half_life_days,
        message_stage=np.asarray(spec.message_stages, dtype=np.int64),
        threads=spec.settings.num_threads,
        workers=workers,
        message_offer=np.asarray(spec.message_offers, dtype=np.int64),
    )
