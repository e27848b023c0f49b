"""The feature definitions computed with numpy over a :class:`~engine.features.history.History`: many
requests at once, one array operation per term (training, batch scoring, explanations).

Each term is computed once per call however many features read it; a column is computed when asked for
or read by another. Per channel, topic or stage, a count is one query for every code at once
(``count_by``), of which each feature reads its code's column.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from engine.features.definitions import terms as t
from engine.features.history import History, Requests
from engine.timeutil import NS_PER_DAY

Columns = dict[str, np.ndarray]

DETRACTOR_MAX = 6  # NPS: 0-6 detractor, 7-8 passive, 9-10 promoter
PROMOTER_MIN = 9


@dataclass(frozen=True, eq=False)
class Candidates:
    """Per request row: the candidate's codes (-1 when the row has no candidate) and catalog facts."""

    message: np.ndarray
    channel: np.ndarray
    topic: np.ndarray
    stage: np.ndarray
    value: np.ndarray
    valid_from_ns: np.ndarray  # NaN when open-ended
    offer: np.ndarray | None = None  # the offer code (-1: no candidate); None when no offer is shared


class CustomerColumns:
    """Customer-level columns of ``terms`` for ``requests`` (one per (customer, as_of) pair), computed on
    first read."""

    def __init__(self, terms: Mapping[str, t.Term], history: History, requests: Requests) -> None:
        self._terms = terms
        self._history = history
        self._requests = requests
        self._columns: Columns = {}
        self._values: dict[object, np.ndarray] = {}

    def __len__(self) -> int:
        return len(self._requests)

    def column(self, name: str) -> np.ndarray:
        if name not in self._columns:
            self._columns[name] = self.value(self._terms[name])
        return self._columns[name]

    def value(self, term: t.Term) -> np.ndarray:
        if term not in self._values:
            self._values[term] = np.asarray(self._compute(term), dtype=np.float64)
        return self._values[term]

    def _compute(self, term: t.Term) -> np.ndarray:
        h, r = self._history, self._requests
        if isinstance(term, t.Count):
            if term.per is None:
                return h.count(term.types, r, window_days=term.window)
            return self._per_code(("count", term.types, term.window, term.per))[:, term.code]
        if isinstance(term, t.Decayed):
            if term.per is None:
                return h.decayed_count(term.types, r, window_days=term.window)
            return self._per_code(("decayed", term.types, term.window, term.per))[:, term.code]
        if isinstance(term, t.DaysSince):
            return h.days_since_last(term.types, r)
        if isinstance(term, t.LastValue):
            return h.last_value(term.types, r)
        if isinstance(term, t.Sum):
            return h.value_sum(term.types, r, window_days=term.window)
        if isinstance(term, t.Column):
            return self.column(term.name)
        if isinstance(term, t.Rate):
            return (self.value(term.responses) + term.strength * term.prior_rate) / (self.value(term.exposures) + term.strength)
        if isinstance(term, t.Share):
            part, total = self.value(term.part), self.value(term.total)
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(total > 0, part / total, np.nan)
        if isinstance(term, t.Difference):
            return self.value(term.a) - self.value(term.b)
        if isinstance(term, t.Stage):
            return journey_stage(*(self.value(part) for part in (term.purchases_ever, term.purchases_long, term.conversions_short,
                                                                  term.visits_short, term.clicks_short)))
        if isinstance(term, t.NpsGroup):
            score = self.value(term.score)
            inside = score <= DETRACTOR_MAX if term.group == "detractor" else score >= PROMOTER_MIN
            return np.where(np.isnan(score), np.nan, inside.astype(np.float64))
        raise TypeError(f"{type(term).__name__} is not a customer-level term")

    def _per_code(self, key: tuple) -> np.ndarray:
        """Every code's values at once (requests x codes), shared by the features of each code."""
        if key not in self._values:
            kind, types, window, per = key
            query = self._history.count_by if kind == "count" else self._history.decayed_count_by
            self._values[key] = query(types, self._requests, window_days=window, by=per)
        return self._values[key]


def journey_stage(purchases_ever: np.ndarray, purchases_long: np.ndarray, conversions_short: np.ndarray,
                  visits_short: np.ndarray, clicks_short: np.ndarray) -> np.ndarray:
    """:class:`engine.features.definitions.terms.Stage`: the most advanced stage whose rule holds, as 0..3."""
    stage = np.zeros(len(purchases_ever), dtype=np.float64)
    stage[(visits_short >= 2) | (clicks_short >= 1)] = 1.0
    stage[(purchases_long >= 1) | (conversions_short >= 1)] = 2.0
    stage[(purchases_ever >= 2) & (purchases_long >= 1)] = 3.0
    return stage


@dataclass(frozen=True, eq=False)
class RowInputs:
    """What candidate-level terms read per request row: the rows as history requests, their candidates,
    each row's (customer, as_of) pair in ``customer``, its profile row (-1: none), and the encoded
    attribute columns (name -> values per profile row or message code)."""

    requests: Requests
    candidates: Candidates
    customer: CustomerColumns
    pair: np.ndarray
    profile: np.ndarray
    profile_attributes: Mapping[str, np.ndarray]
    message_attributes: Mapping[str, np.ndarray]


def candidate_columns(terms: Mapping[str, t.Term], names: Sequence[str], history: History, rows: RowInputs,
                      wanted: frozenset[str] | None = None) -> Columns:
    """The candidate-level columns ``names``, one value per row; a costly one (a per-candidate history
    question) not in ``wanted`` (None: all) is left NaN."""
    blocks: dict[tuple, np.ndarray] = {}
    out: Columns = {}
    with np.errstate(invalid="ignore"):
        for name in names:
            term = terms[name]
            if isinstance(term, t.COSTLY_TERMS) and wanted is not None and name not in wanted:
                out[name] = np.full(len(rows.pair), np.nan)
                continue
            out[name] = np.asarray(_candidate_value(term, history, rows, blocks), dtype=np.float64)
    return out


_CODE_OF = {"channel": "channel", "topic": "topic", "stage": "stage"}


def _candidate_value(term: t.Term, history: History, rows: RowInputs, blocks: dict) -> np.ndarray:
    cand, r = rows.candidates, rows.requests
    has = cand.message >= 0
    if isinstance(term, t.MessageFact):
        if term.fact == "days_since_valid_from":
            return (r.as_of - cand.valid_from_ns) / NS_PER_DAY
        if term.fact == "value":
            return np.where(has, cand.value, np.nan)
        code = getattr(cand, term.fact)
        return np.where(has & (code >= 0) if term.fact == "stage" else has, code, np.nan)
    if isinstance(term, t.CandidateCount):
        sub = cand.message if term.of == "message" else cand.offer
        return np.where(has, history.count(term.types, r, window_days=term.window, by=term.of, sub=sub), np.nan)
    if isinstance(term, t.CandidateDaysSince):
        return history.days_since_last(term.types, r, by=term.of, sub=cand.message if term.of == "message" else cand.topic)
    if isinstance(term, (t.Pick, t.Gap, t.Rank)):
        at = _places(rows.pair, getattr(cand, _CODE_OF[term.of]), len(term.columns), len(rows.customer))
        lines = _lines(rows.customer, term.columns, blocks)
        if isinstance(term, t.Pick):
            return lines.ravel()[at]
        gap, rank = _standing(lines, term.columns, blocks)
        return (gap if isinstance(term, t.Gap) else rank).ravel()[at]
    if isinstance(term, t.StageFit):
        stage = rows.customer.column("journey_stage")[rows.pair]
        known = has & (cand.stage >= 0)
        fit = (cand.stage == stage).astype(np.float64) if term.how == "match" else cand.stage - stage
        return np.where(known, fit, np.nan)
    if isinstance(term, t.Attribute):
        table, at = ((rows.profile_attributes, rows.profile) if term.source == "profile"
                     else (rows.message_attributes, cand.message))
        encoded = table[term.column]
        gathered = np.where(at >= 0, encoded[np.maximum(at, 0)], np.nan) if len(encoded) else np.full(len(at), np.nan)
        return (r.as_of - gathered) / NS_PER_DAY if term.is_date else gathered
    raise TypeError(f"{type(term).__name__} is not a candidate-level term")


def _places(pair: np.ndarray, codes: np.ndarray, width: int, pairs: int) -> np.ndarray:
    """Each row's place in a (width + 1) x pairs block of per-pair columns, flattened: its pair's value
    under its code, or the last line (NaN) where the code is not one of the ``width``."""
    codes = np.asarray(codes, dtype=np.int64)  # codes come as int16 and int32: their product with pairs must not wrap
    return np.where((codes >= 0) & (codes < width), codes, width) * pairs + np.asarray(pair, dtype=np.int64)


def _lines(customer: CustomerColumns, columns: tuple[str, ...], blocks: dict) -> np.ndarray:
    """The customer columns, one line each, and a last line of NaN ((columns + 1) x pairs)."""
    key = ("lines", columns)
    if key not in blocks:
        lines = np.empty((len(columns) + 1, len(customer)), dtype=np.float64)
        for line, column in zip(lines, columns):
            line[:] = customer.column(column)
        lines[-1] = np.nan
        blocks[key] = lines
    return blocks[key]


def _standing(lines: np.ndarray, columns: tuple[str, ...], blocks: dict) -> tuple[np.ndarray, np.ndarray]:
    """Per pair and code: (its value minus the pair's best value, its rank with 1 = best, ties sharing the
    better rank), missing counted as 0; the last line NaN. Per pair and code first, then one gather per
    row: a pair has hundreds of candidate rows but a few codes."""
    key = ("standing", columns)
    if key not in blocks:
        gaps = np.full_like(lines, np.nan)
        ranks = np.full_like(lines, np.nan)
        if len(lines) > 1:
            filled = lines[:-1].copy()
            filled[np.isnan(filled)] = 0.0
            np.subtract(filled, filled.max(axis=0), out=gaps[:-1])
            (filled[None, :, :] > filled[:, None, :]).sum(axis=1, out=ranks[:-1])  # [i, p]: codes above code i in pair p
            ranks[:-1] += 1.0
        blocks[key] = (gaps, ranks)
    return blocks[key]
