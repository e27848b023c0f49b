"""Run a :class:`~engine.features.program.CustomerProgram` over a serving batch in one compiled pass.

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

from engine.features.build import ColumnBlock, family_columns
from engine.features.context import FamilyContext
from engine.features.history import _DECAY_SCALE, _VALUE_SCALE, DECAY_ANCHOR_NS
from engine.features.log import EVENT_CODE
from engine.features.program import (
    COUNT, DAYS, DECAYED, DETRACTOR, DIFFERENCE, LAST_VALUE, PROMOTER, RATE, SHARE, STAGE, VALUE_SUM,
    CustomerProgram,
)
from engine.features.snapshot import SnapshotHistory
from engine.features.voice import DETRACTOR_MAX, PROMOTER_MIN
from engine.timeutil import NS_PER_DAY


class CompiledFamilies:
    """:func:`engine.features.build.family_columns` on a snapshot history, from the families' program
    (:func:`engine.features.program.customer_program`) run compiled: the same columns in one
    :class:`~engine.features.build.ColumnBlock`. Each request must ask at its customer's snapshot instant,
    as serving's do (the snapshot's queries check it; the program reads the instant from the request)."""

    kind = "compiled"

    def __init__(self, program: CustomerProgram) -> None:
        self.program = program
        self._index = {name: row for row, name in enumerate(program.names)}

    def __call__(self, ctx: FamilyContext) -> ColumnBlock:
        if not isinstance(ctx.history, SnapshotHistory):
            raise TypeError("the compiled families read a snapshot history (a serving batch's)")
        block = run_program(self.program, ctx.history, ctx.requests.customer, ctx.requests.as_of)
        return ColumnBlock(self.program.names, self._index, block)


def first_difference(compiled: CompiledFamilies, contexts: Sequence[FamilyContext]) -> str | None:
    """Where the compiled columns differ from the families' on these requests (names, order, or a value;
    NaN equal to NaN), or None: what the decision engine checks before serving with them."""
    for ctx in contexts:
        expected, got = family_columns(ctx), compiled(ctx)
        if tuple(expected) != tuple(got):
            first = next(((e, g) for e, g in zip(expected, got) if e != g), (f"{len(expected)} columns", f"{len(got)} columns"))
            return f"the columns differ from the families' (first: {first[0]!r} against {first[1]!r})"
        for name, column in expected.items():
            want, have = np.asarray(column, dtype=np.float64), got[name]
            differ = ~((want == have) | (np.isnan(want) & np.isnan(have)))
            if differ.any():
                return f"column {name!r} differs from the families' for {int(differ.sum())} of {len(want)} requests"
    return None


def run_program(program: CustomerProgram, history: SnapshotHistory, customer: np.ndarray, as_of: np.ndarray) -> np.ndarray:
    """The program's columns for each request ``(customer[i], as_of[i])`` (customer codes of the
    snapshot's log, each asked at its snapshot instant): float64, shape (program.columns, requests), the
    output columns first."""
    log = history.log
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
