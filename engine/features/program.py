"""The customer-level feature families as one flat program, for the compiled serving path.

A serving batch runs the six customer families (:data:`engine.features.build.CUSTOMER_FAMILIES`) over a
few customers: a few hundred numpy calls on arrays of eight, a third of a decision's time in the API.
:func:`customer_program` states the same columns as a list of instructions, in the families' column
order and with their arithmetic, and :mod:`engine.features.kernel` runs it in one compiled pass.

The families stay the definition. The program mirrors them, and is only used where it gives exactly
what they give: ``tests/features/test_program.py`` compares every column on simulated worlds, and the
decision engine compares both on a sample of its own customers when it loads a model, serving with
the families if anything differs (a family changed without this file).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from engine.config import FeatureSettings
from engine.contract.schema import JOURNEY_STAGES
from engine.features.affinity import INTEREST_TYPES
from engine.features.engagement import RESPONSES
from engine.features.log import EVENT_CODE, CatalogVocabularies
from engine.features.pressure import PRESSURE_WINDOWS
from engine.features.rfm import ACTIVITY_TYPES
from engine.timeutil import NS_PER_DAY

# Instructions: what a column holds, per (customer, as_of) pair.
COUNT = 0  # weighted count of the events of ``types`` in the window with ``sub`` under ``by``
DAYS = 1  # days since the last event of ``types`` before as_of (NaN: none)
LAST_VALUE = 2  # value of the last event of ``types`` before as_of (NaN: none)
VALUE_SUM = 3  # sum of the values of the events of ``types`` in the window, in fixed point as History
DECAYED = 4  # decayed count of the events of ``types`` in the window with ``sub`` under ``by``
RATE = 5  # (column a + f0) / (column b + f1): a smoothed rate, f0 = strength * prior, f1 = strength
SHARE = 6  # column a / column b where b > 0, else NaN
DIFFERENCE = 7  # column a - column b
STAGE = 8  # the journey stage from columns a..e (engine.features.journey.infer_stage)
DETRACTOR = 9  # NPS flags of the score in column a (engine.features.voice.nps_flags)
PROMOTER = 10

BY_CODE = {"customer": 0, "channel": 1, "topic": 2, "stage": 3, "message": 4}
LIFETIME = -1  # the window of a count over all history before as_of

# Fields of an instruction row (int64): op, target column, types mask, window days, by, sub, a..e.
OP, TARGET, TYPES, WINDOW, BY, SUB, A, B, C, D, E = range(11)
_WIDTH = 11


class UnsupportedProgram(ValueError):
    """The settings ask for something the program does not state (the families would raise too)."""


@dataclass(frozen=True, eq=False)
class CustomerProgram:
    """``names``: the output columns, in the families' order; ``code`` (rows of int64 fields, in the
    order to run them) and ``constants`` (f0, f1 per row) write ``columns`` columns, the first
    ``len(names)`` of them the output, the others intermediate counts. The WINDOW field of a row that
    reads the history indexes ``count_limits`` (each count window's longest age in ns; LIFETIME: the
    int64 maximum), or ``decay_limits`` for DECAYED rows. The customer families ask nothing by message,
    and last events and value sums by customer only: so does the program."""

    names: tuple[str, ...]
    code: np.ndarray
    constants: np.ndarray
    columns: int
    count_limits: np.ndarray
    decay_limits: np.ndarray
    epoch_ns: int  # the decay's epochs and time constant, as engine.features.snapshot.SnapshotHistory's
    tau_ns: float
    message_stage: np.ndarray  # the journey stage code of each message code (-1: none)
    codes: int  # the most codes of any "by" (channels, topics, journey stages): the width of the kernel's tables


def customer_program(vocab: CatalogVocabularies, settings: FeatureSettings, message_stages: Sequence[int]) -> CustomerProgram:
    """The program of the customer families for this catalog and these settings (module docstring)."""
    builder = _Builder(settings, max(len(vocab.channels.values), len(vocab.topics.values), len(JOURNEY_STAGES), 1))
    _rfm(builder, settings)
    _engagement(builder, vocab, settings)
    _affinity(builder, vocab, settings)
    _journey(builder, settings)
    _voice(builder, settings)
    _pressure(builder, vocab)
    return builder.program(settings, message_stages)


def _long(settings: FeatureSettings) -> int:
    return settings.windows_days[-1]


def _short(settings: FeatureSettings) -> int:
    windows = settings.windows_days
    return windows[-2] if len(windows) > 1 else windows[-1]


def _rfm(b: _Builder, s: FeatureSettings) -> None:
    for kind in ACTIVITY_TYPES:
        b.put(f"days_since_last_{kind}", DAYS, (kind,))
        for window in s.windows_days:
            b.put(f"{kind}_count_{window}d", COUNT, (kind,), window)
    for window in s.windows_days:
        b.put(f"purchase_amount_sum_{window}d", VALUE_SUM, ("purchase",), window)
    long = _long(s)
    b.derive(f"purchase_amount_avg_{long}d", SHARE, b.named(f"purchase_amount_sum_{long}d"), b.named(f"purchase_count_{long}d"))


def _engagement(b: _Builder, vocab: CatalogVocabularies, s: FeatureSettings) -> None:
    long = _long(s)
    priors = {"open": s.prior_open_rate, "click": s.prior_click_rate, "conversion": s.prior_conversion_rate}
    for code, channel in enumerate(vocab.channels.values):
        impressions = b.put(f"{channel}_impressions_{long}d", COUNT, ("impression",), long, "channel", code)
        for kind in RESPONSES:
            responses = b.scratch(COUNT, (kind,), long, "channel", code)
            b.derive(f"{channel}_{kind}_rate_{long}d", RATE, responses, impressions,
                     constants=(s.prior_strength * priors[kind], s.prior_strength))


def _affinity(b: _Builder, vocab: CatalogVocabularies, s: FeatureSettings) -> None:
    long = _long(s)
    all_visits = b.scratch(COUNT, ("visit",), long)
    for code, topic in enumerate(vocab.topics.values):
        visits = b.put(f"topic_{topic}_visits_{long}d", COUNT, ("visit",), long, "topic", code)
        b.put(f"topic_{topic}_purchases_{long}d", COUNT, ("purchase",), long, "topic", code)
        clicks = b.put(f"topic_{topic}_clicks_{long}d", COUNT, ("click",), long, "topic", code)
        impressions = b.put(f"topic_{topic}_impressions_{long}d", COUNT, ("impression",), long, "topic", code)
        b.derive(f"topic_{topic}_click_rate_{long}d", RATE, clicks, impressions,
                 constants=(s.prior_strength * s.prior_click_rate, s.prior_strength))
        b.derive(f"topic_{topic}_visit_share_{long}d", SHARE, visits, all_visits)
        b.put(f"topic_{topic}_affinity", DECAYED, INTEREST_TYPES, long, "topic", code)


def _journey(b: _Builder, s: FeatureSettings) -> None:
    long, short = _long(s), _short(s)
    lifetime = b.put("purchase_count_lifetime", COUNT, ("purchase",), LIFETIME)
    purchases_long = b.scratch(COUNT, ("purchase",), long)
    b.derive(f"purchase_count_before_{long}d", DIFFERENCE, lifetime, purchases_long)
    conversions = b.put(f"conversion_count_{short}d", COUNT, ("conversion",), short)
    visits_short = b.scratch(COUNT, ("visit",), short)
    clicks_short = b.scratch(COUNT, ("click",), short)
    b.derive("journey_stage", STAGE, lifetime, purchases_long, conversions, visits_short, clicks_short)
    for code, name in enumerate(JOURNEY_STAGES):
        impressions = b.put(f"stage_{name}_impressions_{short}d", COUNT, ("impression",), short, "stage", code)
        clicks = b.scratch(COUNT, ("click",), short, "stage", code)
        b.derive(f"stage_{name}_click_rate_{short}d", RATE, clicks, impressions,
                 constants=(s.prior_strength * s.prior_click_rate, s.prior_strength))


def _voice(b: _Builder, s: FeatureSettings) -> None:
    score = b.put("last_survey_score", LAST_VALUE, ("survey",))
    b.put("days_since_last_survey", DAYS, ("survey",))
    b.derive("is_detractor", DETRACTOR, score)
    b.derive("is_promoter", PROMOTER, score)
    b.put("days_since_last_complaint", DAYS, ("complaint",))
    for window in (_short(s), _long(s)):
        b.put(f"support_count_{window}d", COUNT, ("support",), window)
        b.put(f"complaint_count_{window}d", COUNT, ("complaint",), window)


def _pressure(b: _Builder, vocab: CatalogVocabularies) -> None:
    for window in PRESSURE_WINDOWS:
        b.put(f"impressions_{window}d", COUNT, ("impression",), window)
        for code, channel in enumerate(vocab.channels.values):
            b.put(f"{channel}_impressions_{window}d", COUNT, ("impression",), window, "channel", code)
    for code, topic in enumerate(vocab.topics.values):
        b.put(f"topic_{topic}_impressions_7d", COUNT, ("impression",), 7, "topic", code)


class _Builder:
    """Instructions in the order they run; output columns in the families' order, a name written again
    keeping its first place (as a dict does when a family overwrites a column)."""

    def __init__(self, settings: FeatureSettings, codes: int) -> None:
        self.codes = codes
        self._max_window = settings.max_window_days
        self._rows: list[tuple[list[int], tuple[float, float]]] = []
        self._output: dict[str, int] = {}  # name -> instruction row that writes it (the last one)
        self.decay_windows: list[int] = []
        self.count_windows: list[int] = []

    def put(self, name: str, op: int, types: tuple[str, ...], window: int = LIFETIME, by: str = "customer", sub: int = 0) -> int:
        """An instruction that reads the history, writing column ``name``; returns its row."""
        return self._output_row(name, self._read(op, types, window, by, sub))

    def scratch(self, op: int, types: tuple[str, ...], window: int = LIFETIME, by: str = "customer", sub: int = 0) -> int:
        """An intermediate column (no name); returns its row."""
        return self._append(self._read(op, types, window, by, sub), (0.0, 0.0))

    def derive(self, name: str, op: int, *inputs: int, constants: tuple[float, float] = (0.0, 0.0)) -> int:
        """Column ``name`` computed from the columns the rows ``inputs`` write."""
        fields = [op, -1, 0, 0, 0, 0, *(-(1 + row) for row in inputs), *([0] * (5 - len(inputs)))]
        return self._output_row(name, fields, constants)

    def named(self, name: str) -> int:
        return self._output[name]

    def _read(self, op: int, types: tuple[str, ...], window: int, by: str, sub: int) -> list[int]:
        if window != LIFETIME and window > self._max_window:
            raise UnsupportedProgram(f"window {window} d is longer than the longest configured window")
        mask = 0
        for kind in types:
            mask |= 1 << EVENT_CODE[kind]
        if by == "message" or (by != "customer" and op in (DAYS, LAST_VALUE, VALUE_SUM)):
            raise UnsupportedProgram(f"no customer-level instruction {op} by {by}")  # the families ask none
        # The WINDOW field indexes the program's windows of its kind.
        windows = self.decay_windows if op == DECAYED else self.count_windows
        if window not in windows:
            windows.append(window)
        return [op, -1, mask, windows.index(window), BY_CODE[by], sub, 0, 0, 0, 0, 0]

    def _output_row(self, name: str, fields: list[int], constants: tuple[float, float] = (0.0, 0.0)) -> int:
        row = self._append(fields, constants)
        self._output[name] = row
        return row

    def _append(self, fields: list[int], constants: tuple[float, float]) -> int:
        self._rows.append((fields, (float(constants[0]), float(constants[1]))))
        return len(self._rows) - 1

    def program(self, settings: FeatureSettings, message_stages: Sequence[int]) -> CustomerProgram:
        names = tuple(self._output)
        # Output columns first, in name order; every other row (an intermediate, or a name written again
        # later) gets a column after them.
        column = {row: at for at, row in enumerate(self._output.values())}
        for row in range(len(self._rows)):
            column.setdefault(row, len(column))
        code = np.zeros((len(self._rows), _WIDTH), dtype=np.int64)
        constants = np.zeros((len(self._rows), 2), dtype=np.float64)
        for row, (fields, floats) in enumerate(self._rows):
            resolved = [column[-(1 + f)] if at >= A and f < 0 else f for at, f in enumerate(fields)]
            resolved[TARGET] = column[row]
            code[row] = resolved
            constants[row] = floats
        no_limit = np.iinfo(np.int64).max
        count_limits = np.array([no_limit if w == LIFETIME else w * NS_PER_DAY for w in self.count_windows], dtype=np.int64)
        decay_limits = np.array([w * NS_PER_DAY for w in self.decay_windows], dtype=np.int64)
        return CustomerProgram(names, code, constants, len(column), count_limits, decay_limits,
                               int(settings.max_window_days) * NS_PER_DAY,
                               float(settings.affinity_half_life_days) * NS_PER_DAY / np.log(2.0),
                               np.asarray(message_stages, dtype=np.int64), self.codes)
