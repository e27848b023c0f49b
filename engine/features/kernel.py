"""A serving batch's feature matrix in one compiled pass: :class:`CompiledFeatures` runs the customer
families' program (:mod:`engine.features.program`) and the row program (:mod:`engine.features.
candidate_program`), the matrix :func:`engine.features.build.build_encoded_features` gives, to the bit.

Compiled by numba. Per customer, one pass over its few dozen events fills small tables: weighted
counts per window, event type and code (channel, topic or journey stage), value sums per window and
type, the last event of each type, decayed weights per window, type and code. The instructions then
read them and do the families' arithmetic. The numbers are those of the snapshot's queries
(:class:`engine.features.snapshot.SnapshotHistory`): the same window rule, ``0 < as_of - ts <=
window``; each cell summed in event order, as ``bincount`` sums; value sums in History's fixed point;
decayed weights split at the epoch, with the exponentials computed by numpy as there. Nothing is
compiled with fast-math, so no multiply-add is fused and every value is the one numpy computes.

Imported only by the decision engine (numba takes a fraction of a second to import): training and
batch scoring never need it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numba import njit

from engine.features.build import EncodedTables, FeatureMatrix, _pairs, build_encoded_features
from engine.features.history import _DECAY_SCALE, _VALUE_SCALE, DECAY_ANCHOR_NS
from engine.features.log import EVENT_CODE, EventLog
from engine.features.program import (
    COUNT, DAYS, DECAYED, DETRACTOR, DIFFERENCE, LAST_VALUE, PROMOTER, RATE, SHARE, STAGE, VALUE_SUM,
    CustomerProgram, UnsupportedProgram,
)
from engine.features.candidate_program import (
    CHANNEL as R_CHANNEL, DAYS_SINCE_SHOWN as R_DAYS_SINCE_SHOWN, DAYS_SINCE_VALID_FROM as R_DAYS_SINCE_VALID_FROM, GAP as R_GAP,
    MESSAGE_ATTRIBUTE as R_MESSAGE_ATTRIBUTE, OFFER_IMPRESSIONS as R_OFFER_IMPRESSIONS, PICK as R_PICK, PROFILE_ATTRIBUTE as R_PROFILE_ATTRIBUTE, RANK as R_RANK,
    SEEN_COUNT as R_SEEN_COUNT, STAGE as R_STAGE, STAGE_GAP as R_STAGE_GAP, STAGE_MATCH as R_STAGE_MATCH, TOPIC as R_TOPIC,
    TOPIC_DAYS_SINCE_SHOWN as R_TOPIC_DAYS_SINCE_SHOWN, VALUE as R_VALUE, RowProgram,
)
from engine.features.voice import DETRACTOR_MAX, PROMOTER_MIN
from engine.timeutil import NS_PER_DAY


class CompiledFeatures:
    """:func:`engine.features.build.build_encoded_features` for a serving batch on a snapshot history,
    compiled: the customer program for each (customer, as_of) pair, then each row's columns written
    straight into the matrix (``rows``, built for one ``wanted``). Columns kept in float64 (``precise``)
    must be customer-level ones."""

    kind = "compiled"

    def __init__(self, customers: CustomerProgram, rows: RowProgram) -> None:
        clash = set(customers.names) & set(rows.names)
        if clash:
            raise UnsupportedProgram(f"feature families define the same column twice: {sorted(clash)[:5]}")
        self.customers, self.rows = customers, rows
        self.names = (*customers.names, *rows.names)
        self._index = {name: at for at, name in enumerate(customers.names)}
        # The costly row columns (the candidate's impressions) are computed only when the model reads them.
        self.reads_impressions = bool(np.isin(rows.code[:, 0], (R_SEEN_COUNT, R_DAYS_SINCE_SHOWN, R_TOPIC_DAYS_SINCE_SHOWN)).any())
        self.reads_offers = bool(np.isin(rows.code[:, 0], (R_OFFER_IMPRESSIONS,)).any())

    def build(self, log: EventLog, customer: np.ndarray, as_of: np.ndarray, message: np.ndarray, profile: np.ndarray,
              *, dtype: type = np.float32, precise: Sequence[str] = (), rounded: bool = False) -> FeatureMatrix:
        """As build_encoded_features(history, tables, customer, as_of, message, profile, dtype=dtype,
        precise=precise, wanted=the rows' wanted) on a snapshot history of ``log`` that asks each
        customer at its row's instant (a customer's rows must share one). ``rounded``: the values of the
        float32 matrix, held in ``dtype`` (float64: what the compiled model reads, without a copy)."""
        missing = [name for name in precise if name not in self._index]
        if missing:
            raise ValueError(f"only customer-level columns are kept in float64 here, not {missing}")
        customer, as_of = np.asarray(customer, dtype=np.int64), np.asarray(as_of, dtype=np.int64)
        pair, pair_customer, pair_as_of = _pairs(customer, as_of)
        block = run_program(self.customers, log, pair_customer, pair_as_of)
        rows = self.rows
        pairs = len(pair_customer)
        if self.reads_impressions:
            seen = np.zeros((pairs, rows.messages))
            last_message = np.full((pairs, rows.messages), -1, dtype=np.int64)
            last_topic = np.full((pairs, rows.topics), -1, dtype=np.int64)
            _impressions(EVENT_CODE["impression"], log.customer, log.ts, log.event_type, log.topic, log.message, log.weight,
                         pair_customer, pair_as_of, rows.messages, rows.topics, seen, last_message, last_topic)
        else:
            seen, last_message, last_topic = np.zeros((0, 0)), np.zeros((0, 0), dtype=np.int64), np.zeros((0, 0), dtype=np.int64)
        offers = np.zeros((pairs, len(rows.offer_limits), rows.messages) if self.reads_offers else (0, 0, 0))
        if self.reads_offers:
            _offer_impressions(EVENT_CODE["impression"], log.customer, log.ts, log.event_type, log.message, log.weight,
                               rows.message_offer, rows.offer_limits, pair_customer, pair_as_of, offers)
        values = np.empty((len(customer), len(self.names)), dtype=dtype)
        _fill_rows(rows.code, rows.lines, rows.data, rows.channel, rows.topic, rows.stage, rows.value, rows.valid_from_ns,
                   rows.stage_column, block, len(self.customers.names), pair, np.asarray(message, dtype=np.int64),
                   np.asarray(profile, dtype=np.int64), as_of, log.ts, seen, last_message, last_topic, rows.message_offer, offers,
                   rounded, values)
        return FeatureMatrix(self.names, values, {name: block[self._index[name]][pair] for name in precise})


def first_difference(compiled: CompiledFeatures, tables: EncodedTables, batches: Sequence[tuple], precise: Sequence[str],
                     wanted: frozenset[str] | None) -> str | None:
    """Where the compiled matrix differs from build_encoded_features' (the families'), both in float64,
    on each batch ``(history, customer, as_of, message, profile)``: a column's name or place, a value (NaN
    equal to NaN) or a precise column; None if nowhere. What the decision engine checks before serving
    with it."""
    for history, customer, as_of, message, profile in batches:
        expected = build_encoded_features(history, tables, customer, as_of, message, profile, dtype=np.float64, precise=precise,
                                          wanted=wanted)
        got = compiled.build(history.log, customer, as_of, message, profile, dtype=np.float64, precise=precise)
        if expected.names != got.names:
            first = next(((e, g) for e, g in zip(expected.names, got.names) if e != g),
                         (f"{len(expected.names)} columns", f"{len(got.names)} columns"))
            return f"the columns differ from the families' (first: {first[0]!r} against {first[1]!r})"
        same = (expected.values == got.values) | (np.isnan(expected.values) & np.isnan(got.values))
        if not same.all():
            column = int(np.flatnonzero(~same.all(axis=0))[0])
            return (f"column {expected.names[column]!r} differs from the families' in {int((~same[:, column]).sum())} of "
                    f"{len(same)} rows")
        for name in precise:
            if not np.array_equal(expected.precise[name], got.precise[name], equal_nan=True):
                return f"the float64 column {name!r} differs from the families'"
    return None


def run_program(program: CustomerProgram, log: EventLog, customer: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """The program's columns for each request ``(customer[i], as_of[i])`` (customer codes of ``log``, as a
    snapshot history of it asks them: one instant per customer): float64, shape (program.columns,
    requests), the output columns first."""
    customer = np.asarray(customer, dtype=np.int64)
    as_of = np.asarray(as_of, dtype=np.int64)
    limits = program.decay_limits
    # The decayed counts' exponentials are numpy's, as the snapshot computes them (numpy's exp and the
    # compiled one may differ in the last bit): their arguments compiled, then one np.exp for all.
    powers = _decay_exponents(log.ts, as_of, limits, program.epoch_ns, program.tau_ns)
    np.exp(powers, out=powers)
    out = np.empty((program.columns, len(customer)), dtype=np.float64)
    _run(program.code, program.constants, program.count_limits, limits, program.epoch_ns, program.message_stage,
         program.codes, log.customer, log.ts, log.event_type, log.channel, log.topic, log.message, log.value, log.weight,
         powers, customer, as_of, out)
    return out


_TYPES = len(EVENT_CODE)
_NS_PER_DAY = NS_PER_DAY
_BYS = 4  # customer, channel, topic, stage (program.BY_CODE); nothing by message


@njit(cache=True, nogil=True)
def _epoch_of(ts, epoch_ns):
    """engine.features.history._epoch_start of one instant (floor division, as numpy's)."""
    return DECAY_ANCHOR_NS + ((ts - DECAY_ANCHOR_NS) // epoch_ns) * epoch_ns


@njit(cache=True, nogil=True)
def _decay_exponents(ts, as_of, limits, epoch_ns, tau):
    """What the snapshot passes to np.exp for decayed counts: per event, its age from its epoch's start
    over tau; then per window and request, minus the age of as_of from the epoch of the window's start
    (the early part's scale) and from the epoch of as_of (the late part's). Empty without decay."""
    if not len(limits):
        return np.zeros(0)
    n, pairs = len(ts), len(as_of)
    out = np.empty(n + 2 * len(limits) * pairs)
    for e in range(n):
        out[e] = (ts[e] - _epoch_of(ts[e], epoch_ns)) / tau
    for w in range(len(limits)):
        for p in range(pairs):
            start = as_of[p] - limits[w]
            out[n + w * pairs + p] = -(as_of[p] - _epoch_of(start, epoch_ns)) / tau
            out[n + (len(limits) + w) * pairs + p] = -(as_of[p] - _epoch_of(as_of[p] - 1, epoch_ns)) / tau
    return out


@njit(cache=True, nogil=True)
def _run(code, constants, count_limits, decay_limits, epoch_ns, message_stage, codes, log_customer, ts, event_type, channel,
         topic, message, value, weight, powers, customer, as_of, out):
    n, pairs, windows = len(ts), len(customer), len(decay_limits)
    counts = np.zeros((_BYS, len(count_limits), _TYPES, codes))
    sums = np.zeros((len(count_limits), _TYPES))
    early = np.zeros((len(decay_limits), _BYS, _TYPES, codes), dtype=np.int64)
    late = np.zeros((len(decay_limits), _BYS, _TYPES, codes), dtype=np.int64)
    last = np.empty(_TYPES, dtype=np.int64)
    sub = np.zeros(_BYS, dtype=np.int64)
    for p in range(len(customer)):
        c = customer[p]
        now = as_of[p]
        counts[:] = 0.0
        sums[:] = 0.0
        early[:] = 0
        late[:] = 0
        last[:] = -1
        lo, hi = 0, 0
        if c >= 0:
            lo = np.searchsorted(log_customer, c, side="left")
            hi = np.searchsorted(log_customer, c, side="right")
        for e in range(lo, hi):
            t = np.int64(event_type[e])
            age = now - ts[e]
            if t < 0 or t >= _TYPES or age <= 0:
                continue  # an unknown type is in no query; an event at or after as_of counts nowhere
            last[t] = e  # the log is in time order: the greatest row is the latest event
            sub[1], sub[2], sub[3] = channel[e], topic[e], -1
            m = message[e]
            if 0 <= m < len(message_stage):
                sub[3] = message_stage[m]
            v = value[e]
            fixed = float(np.int64(np.rint((0.0 if np.isnan(v) else v) * _VALUE_SCALE)))
            for w in range(len(count_limits)):
                if age > count_limits[w]:
                    continue
                counts[0, w, t, 0] += weight[e]
                sums[w, t] += fixed
                for by in range(1, _BYS):
                    if 0 <= sub[by] < codes:
                        counts[by, w, t, sub[by]] += weight[e]
            for w in range(windows):
                if age > decay_limits[w]:
                    continue
                # The window spans at most two epochs: the part from the later one's start on is "late".
                split = max(_epoch_of(now - 1, epoch_ns), now - decay_limits[w])
                part = late if ts[e] >= split else early
                weight_of = np.int64(np.rint(powers[e] * _DECAY_SCALE))
                for by in range(1, _BYS):
                    if 0 <= sub[by] < codes:
                        part[w, by, t, sub[by]] += weight_of
        for row in range(code.shape[0]):
            op, target, mask, window, by, at = code[row, 0], code[row, 1], code[row, 2], code[row, 3], code[row, 4], code[row, 5]
            a, b = code[row, 6], code[row, 7]
            if op == COUNT or op == VALUE_SUM:
                total = 0.0
                for t in range(_TYPES):
                    if (mask >> t) & 1:
                        total += counts[by, window, t, at] if op == COUNT else sums[window, t]
                out[target, p] = total if op == COUNT else total / _VALUE_SCALE
            elif op == DAYS or op == LAST_VALUE:
                row_of_last = -1
                for t in range(_TYPES):
                    if (mask >> t) & 1 and last[t] > row_of_last:
                        row_of_last = last[t]
                if row_of_last < 0:
                    out[target, p] = np.nan
                elif op == DAYS:
                    out[target, p] = (now - ts[row_of_last]) / _NS_PER_DAY
                else:
                    out[target, p] = value[row_of_last]
            elif op == DECAYED:
                early_sum, late_sum = 0, 0
                for t in range(_TYPES):
                    if (mask >> t) & 1:
                        early_sum += early[window, by, t, at]
                        late_sum += late[window, by, t, at]
                out[target, p] = (early_sum / _DECAY_SCALE * powers[n + window * pairs + p]
                                  + late_sum / _DECAY_SCALE * powers[n + (windows + window) * pairs + p])
            elif op == RATE:
                out[target, p] = (out[a, p] + constants[row, 0]) / (out[b, p] + constants[row, 1])
            elif op == SHARE:
                out[target, p] = out[a, p] / out[b, p] if out[b, p] > 0 else np.nan
            elif op == DIFFERENCE:
                out[target, p] = out[a, p] - out[b, p]
            elif op == STAGE:
                lifetime, purchases, conversions = out[a, p], out[b, p], out[code[row, 8], p]
                visits, clicks = out[code[row, 9], p], out[code[row, 10], p]
                stage = 0.0
                if visits >= 2 or clicks >= 1:
                    stage = 1.0
                if purchases >= 1 or conversions >= 1:
                    stage = 2.0
                if lifetime >= 2 and purchases >= 1:
                    stage = 3.0
                out[target, p] = stage
            elif op == DETRACTOR or op == PROMOTER:
                score = out[a, p]
                if np.isnan(score):
                    out[target, p] = np.nan
                elif op == DETRACTOR:
                    out[target, p] = 1.0 if score <= DETRACTOR_MAX else 0.0
                else:
                    out[target, p] = 1.0 if score >= PROMOTER_MIN else 0.0


@njit(cache=True, nogil=True)
def _impressions(impression, log_customer, ts, event_type, topic, message, weight, pair_customer, pair_as_of, messages, topics,
                 seen, last_message, last_topic):
    """Per pair: impressions of each message before as_of (weighted), and the log row of the last one
    of each message and of each topic (-1: none), as the snapshot's queries by message and by topic."""
    for p in range(len(pair_customer)):
        c = pair_customer[p]
        if c < 0:
            continue
        for e in range(np.searchsorted(log_customer, c, side="left"), np.searchsorted(log_customer, c, side="right")):
            if np.int64(event_type[e]) != impression or pair_as_of[p] - ts[e] <= 0:
                continue
            m, t = message[e], topic[e]
            if 0 <= m < messages:
                seen[p, m] += weight[e]
                last_message[p, m] = e  # the log is in time order: the greatest row is the latest
            if 0 <= t < topics:
                last_topic[p, t] = e


@njit(cache=True, nogil=True)
def _offer_impressions(impression, log_customer, ts, event_type, message, weight, message_offer, limits, pair_customer, pair_as_of,
                       offers):
    """Per pair, window and offer: impressions of the offer's messages in the window (weighted), as the
    snapshot's count by offer: ``0 < as_of - ts <= window``, summed in event order."""
    for p in range(len(pair_customer)):
        c = pair_customer[p]
        if c < 0:
            continue
        for e in range(np.searchsorted(log_customer, c, side="left"), np.searchsorted(log_customer, c, side="right")):
            age = pair_as_of[p] - ts[e]
            m = message[e]
            if np.int64(event_type[e]) != impression or age <= 0 or m < 0 or m >= len(message_offer):
                continue
            o = message_offer[m]
            if o < 0 or o >= offers.shape[2]:
                continue
            for w in range(len(limits)):
                if age <= limits[w]:
                    offers[p, w, o] += weight[e]


@njit(cache=True, nogil=True)
def _fill_rows(code, lines, data, cat_channel, cat_topic, cat_stage, cat_value, cat_valid_from, stage_column, block, names,
               pair, message, profile, as_of, ts, seen, last_message, last_topic, message_offer, offers, rounded, values):
    """Each row's customer-level columns (its pair's, from ``block``) and then its row columns."""
    pairs = block.shape[1]
    # Per pair first: its customer columns as one row of the matrix's dtype, and the picks, gaps and ranks
    # of each code (a pair has hundreds of candidate rows but a few codes); then each row copies them.
    own_row = np.empty((pairs, names), dtype=values.dtype)
    for p in range(pairs):
        for j in range(names):
            own_row[p, j] = np.float32(block[j, p]) if rounded else block[j, p]
    widest = 0
    for k in range(code.shape[0]):
        widest = max(widest, code[k, 3])
    by_code = np.full((code.shape[0], pairs, max(widest, 1)), np.nan)
    for k in range(code.shape[0]):
        op, at, width = code[k, 0], code[k, 2], code[k, 3]
        if op != R_PICK and op != R_GAP and op != R_RANK:
            continue
        for p in range(pairs):
            best = -np.inf
            for n in range(width):
                other = block[lines[at + n], p]
                best = max(best, 0.0 if np.isnan(other) else other)
            for own in range(width):
                mine = block[lines[at + own], p]
                if op == R_PICK:
                    by_code[k, p, own] = mine
                    continue
                # Among the customer's codes, NaN counted as 0 (engine.features.candidate._standing).
                mine = 0.0 if np.isnan(mine) else mine
                if op == R_GAP:
                    by_code[k, p, own] = mine - best
                else:
                    above = 0
                    for n in range(width):
                        other = block[lines[at + n], p]
                        if (0.0 if np.isnan(other) else other) > mine:
                            above += 1
                    by_code[k, p, own] = float(above) + 1.0
    for i in range(len(pair)):
        p, m = pair[i], message[i]
        values[i, :names] = own_row[p]
        has = m >= 0
        channel = cat_channel[m] if has else -1
        topic = cat_topic[m] if has else -1
        stage = cat_stage[m] if has else -1
        for k in range(code.shape[0]):
            op = code[k, 0]
            v = np.nan
            if op == R_CHANNEL:
                if has:
                    v = float(channel)
            elif op == R_TOPIC:
                if has:
                    v = float(topic)
            elif op == R_STAGE:
                if has and stage >= 0:
                    v = float(stage)
            elif op == R_VALUE:
                if has:
                    v = cat_value[m]
            elif op == R_DAYS_SINCE_VALID_FROM:
                v = (float(as_of[i]) - (cat_valid_from[m] if has else np.nan)) / _NS_PER_DAY
            elif op == R_SEEN_COUNT:
                if 0 <= m < seen.shape[1]:
                    v = seen[p, m]
            elif op == R_OFFER_IMPRESSIONS:
                if has:  # a message without an offer (none in a spec that has offers) counts nothing: 0
                    v = 0.0
                    o = message_offer[m] if m < len(message_offer) else -1
                    if 0 <= o < offers.shape[2]:
                        v = offers[p, code[k, 7], o]
            elif op == R_DAYS_SINCE_SHOWN or op == R_TOPIC_DAYS_SINCE_SHOWN:
                row = -1
                if op == R_DAYS_SINCE_SHOWN and 0 <= m < last_message.shape[1]:
                    row = last_message[p, m]
                elif op == R_TOPIC_DAYS_SINCE_SHOWN and 0 <= topic < last_topic.shape[1]:
                    row = last_topic[p, topic]
                if row >= 0:
                    v = (as_of[i] - ts[row]) / _NS_PER_DAY
            elif op == R_PICK or op == R_GAP or op == R_RANK:
                source, width = code[k, 1], code[k, 3]
                own = channel if source == 0 else topic if source == 1 else stage
                if 0 <= own < width:
                    v = by_code[k, p, own]
            elif op == R_STAGE_MATCH or op == R_STAGE_GAP:
                if has and stage >= 0:
                    customer_stage = block[stage_column, p]
                    v = (1.0 if stage == customer_stage else 0.0) if op == R_STAGE_MATCH else stage - customer_stage
            elif op == R_PROFILE_ATTRIBUTE or op == R_MESSAGE_ATTRIBUTE:
                at, length = code[k, 4], code[k, 5]
                row = profile[i] if op == R_PROFILE_ATTRIBUTE else m
                if 0 <= row < length:
                    v = data[at + row]
                if code[k, 6]:
                    v = (as_of[i] - v) / _NS_PER_DAY
            values[i, names + k] = np.float32(v) if rounded else v
