"""The compiled loops of the numba feature interpreter (:mod:`engine.features.numba_interpreter` writes
their instructions): per (customer, as_of) pair, one pass over the customer's events fills small tables,
and the instructions read them with the numpy interpreter's arithmetic, operation by operation."""

from __future__ import annotations

from enum import IntEnum

import numpy as np
from numba import njit

from engine.features.history import _DECAY_SCALE, _VALUE_SCALE, DECAY_ANCHOR_NS
from engine.features.log import EVENT_CODE
from engine.features.numpy_interpreter import DETRACTOR_MAX, PROMOTER_MIN
from engine.timeutil import NS_PER_DAY


class CustomerOp(IntEnum):
    """What a customer-level instruction writes, per (customer, as_of) pair."""

    COUNT = 0  # weighted count of the events of ``types`` in the window, with ``code`` under ``by``
    DAYS = 1
    LAST_VALUE = 2
    VALUE_SUM = 3
    DECAYED = 4
    RATE = 5  # (column a + f0) / (column b + f1)
    SHARE = 6
    DIFFERENCE = 7
    STAGE = 8  # from columns a..e
    DETRACTOR = 9
    PROMOTER = 10


class RowOp(IntEnum):
    """What a candidate-level instruction writes, per request row."""

    CHANNEL = 0
    TOPIC = 1
    STAGE = 2
    VALUE = 3
    DAYS_SINCE_VALID_FROM = 4
    UNASKED = 5  # a costly column the model never reads: NaN, as the numpy interpreter leaves it
    SEEN_COUNT = 6  # impressions of the candidate message before as_of (weighted)
    DAYS_SINCE_SHOWN = 7
    TOPIC_DAYS_SINCE_SHOWN = 8
    PICK = 9  # the customer column of the candidate's channel, topic or stage
    GAP = 10
    RANK = 11
    STAGE_MATCH = 12
    STAGE_GAP = 13
    PROFILE_ATTRIBUTE = 14
    MESSAGE_ATTRIBUTE = 15
    OFFER_IMPRESSIONS = 16


# The compiled loops read plain ints.
COUNT, DAYS, LAST_VALUE, VALUE_SUM, DECAYED, RATE, SHARE, DIFFERENCE, STAGE, DETRACTOR, PROMOTER = map(int, CustomerOp)
(R_CHANNEL, R_TOPIC, R_STAGE, R_VALUE, R_DAYS_SINCE_VALID_FROM, R_UNASKED, R_SEEN_COUNT, R_DAYS_SINCE_SHOWN, R_TOPIC_DAYS_SINCE_SHOWN,
 R_PICK, R_GAP, R_RANK, R_STAGE_MATCH, R_STAGE_GAP, R_PROFILE_ATTRIBUTE, R_MESSAGE_ATTRIBUTE, R_OFFER_IMPRESSIONS) = map(int, RowOp)

_TYPES = len(EVENT_CODE)
_NS_PER_DAY = NS_PER_DAY
_BYS = 4  # customer, channel, topic, stage (BY_CODE); nothing by message


@njit(cache=True, nogil=True)
def _epoch_of(ts, epoch_ns):
    """engine.features.history._epoch_start of one instant (floor division, as numpy's)."""
    return DECAY_ANCHOR_NS + ((ts - DECAY_ANCHOR_NS) // epoch_ns) * epoch_ns


@njit(cache=True, nogil=True)
def decay_exponents(ts, as_of, limits, epoch_ns, tau):
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
def run_instructions(code, constants, count_limits, decay_limits, epoch_ns, message_stage, codes, log_customer, ts, event_type, channel,
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
                for by in range(_BYS):
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
def count_impressions(impression, log_customer, ts, event_type, topic, message, weight, pair_customer, pair_as_of, messages, topics,
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
def count_offer_impressions(impression, log_customer, ts, event_type, message, weight, message_offer, limits, pair_customer, pair_as_of,
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
def fill_rows(code, lines, data, cat_channel, cat_topic, cat_stage, cat_value, cat_valid_from, stage_column, block, outputs,
               pair, message, profile, as_of, ts, seen, last_message, last_topic, message_offer, offers, rounded, values):
    """Each row's customer-level columns (its pair's, from ``block``) and then its row columns."""
    pairs = block.shape[1]
    names = len(outputs)
    # Per pair first: its customer columns as one row of the matrix's dtype, and the picks, gaps and ranks
    # of each code (a pair has hundreds of candidate rows but a few codes); then each row copies them.
    own_row = np.empty((pairs, names), dtype=values.dtype)
    for p in range(pairs):
        for j in range(names):
            own_row[p, j] = np.float32(block[outputs[j], p]) if rounded else block[outputs[j], p]
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
                # Among the customer's codes, NaN counted as 0 (as the numpy interpreter's _standing).
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
