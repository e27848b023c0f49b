"""The candidate family and the profile and message attributes as a flat program, for the compiled
serving path (:mod:`engine.features.kernel`).

The per-row counterpart of :mod:`engine.features.program`: one instruction per row column, in the order
:func:`engine.features.build.build_encoded_features` writes them (:func:`engine.features.candidate.
candidate_features`, then the attributes of ``_AttributeTables.columns``), reading the candidate's catalog
facts, the customer-level columns of its (customer, as_of) pair by their place in the customer
program's output, and the customer's impressions. The families stay the definition; the decision
engine checks the whole matrix against them when it loads a model (``tests/features/test_program.py``
checks it on simulated worlds).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from engine.contract.schema import JOURNEY_STAGES
from engine.features.build import EncodedTables
from engine.features.candidate import offer_impression_columns
from engine.features.program import UnsupportedProgram
from engine.timeutil import NS_PER_DAY

# Instructions (the OP field); each writes one row column, NaN where the family gives NaN.
CHANNEL, TOPIC, STAGE, VALUE, DAYS_SINCE_VALID_FROM = 0, 1, 2, 3, 4
UNASKED = 5  # a costly column not wanted (FamilyContext.wanted): NaN, as the family leaves it
SEEN_COUNT = 6  # impressions of the candidate message before as_of (weighted)
DAYS_SINCE_SHOWN = 7  # days since the last impression of the candidate message
TOPIC_DAYS_SINCE_SHOWN = 8  # ... of the candidate's topic
PICK = 9  # the customer column of the candidate's channel, topic or stage (LINES: one column per code)
GAP = 10  # that column minus the customer's best over the codes (NaN counted as 0)
RANK = 11  # 1 + the codes whose column is above the candidate's (NaN counted as 0)
STAGE_MATCH = 12  # 1 when the message's stage is the customer's journey stage
STAGE_GAP = 13  # the message's stage minus the customer's
PROFILE_ATTRIBUTE = 14  # an encoded profile attribute (DATA: its values per profile row)
MESSAGE_ATTRIBUTE = 15  # an encoded message attribute (DATA: per message code)
OFFER_IMPRESSIONS = 16  # impressions of the candidate's offer on any channel in a window (WINDOW: of offer_limits)

# Fields of an instruction (int64): op, the code it reads (SOURCE: 0 channel, 1 topic, 2 stage), where its
# customer columns are in LINES and how many, where its attribute values are in DATA and how many,
# whether an attribute is a date (shown as days before as_of), and the window of a per-offer count.
OP, SOURCE, LINES_AT, WIDTH, DATA_AT, DATA_LENGTH, RELATIVE, WINDOW = range(8)
_FIELDS = 8
_SOURCES = {"channel": 0, "topic": 1, "stage": 2}


@dataclass(frozen=True, eq=False)
class RowProgram:
    names: tuple[str, ...]
    code: np.ndarray
    lines: np.ndarray  # customer-program output columns, per PICK/GAP/RANK instruction
    data: np.ndarray  # attribute values, per attribute instruction
    channel: np.ndarray  # the catalog, per message code (as CatalogTable)
    topic: np.ndarray
    stage: np.ndarray
    value: np.ndarray
    valid_from_ns: np.ndarray
    stage_column: int  # the customer program's journey_stage column
    messages: int  # message codes: the width of the per-message impression tables
    topics: int
    message_offer: np.ndarray  # the offer code of each message code (empty: no offer columns)
    offer_limits: np.ndarray  # per window of the OFFER_IMPRESSIONS instructions: its length in ns


def row_program(tables: EncodedTables, customer_index: Mapping[str, int], wanted: frozenset[str] | None) -> RowProgram:
    """The program of the row columns for this catalog and these profiles; ``customer_index``: the place
    of each customer-level column in the customer program's output; ``wanted`` as in
    :func:`engine.features.build.build_encoded_features`."""
    spec, catalog = tables.spec, tables.catalog
    topics, channels = spec.vocab.topics.values, spec.vocab.channels.values
    windows = spec.settings.windows_days
    long, short = windows[-1], (windows[-2] if len(windows) > 1 else windows[-1])
    b = _Builder(customer_index)

    def wants(name: str) -> bool:
        return wanted is None or name in wanted

    b.put("msg_channel", CHANNEL)
    b.put("msg_topic", TOPIC)
    b.put("msg_stage", STAGE)
    b.put("msg_value", VALUE)
    b.put("msg_days_since_valid_from", DAYS_SINCE_VALID_FROM)
    for name, op in (("msg_seen_count", SEEN_COUNT), ("msg_days_since_shown", DAYS_SINCE_SHOWN),
                     ("msg_topic_days_since_shown", TOPIC_DAYS_SINCE_SHOWN)):
        b.put(name, op if wants(name) else UNASKED)
    if len(catalog.offer):  # as candidate._offer_impressions: only when the catalog shares an offer
        for window, name in enumerate(offer_impression_columns(windows)):
            b.put(name, OFFER_IMPRESSIONS if wants(name) else UNASKED, window=window)
    shares = [f"topic_{t}_visit_share_{long}d" for t in topics]
    affinities = [f"topic_{t}_affinity" for t in topics]
    stage_rates = [f"stage_{s}_click_rate_{short}d" for s in JOURNEY_STAGES]
    b.lines("msg_topic_impressions_7d", PICK, "topic", [f"topic_{t}_impressions_7d" for t in topics])
    b.lines("msg_channel_impressions_1d", PICK, "channel", [f"{c}_impressions_1d" for c in channels])
    b.lines("msg_topic_affinity", PICK, "topic", affinities)
    b.lines(f"msg_topic_visit_share_{long}d", PICK, "topic", shares)
    b.lines(f"msg_channel_click_rate_{long}d", PICK, "channel", [f"{c}_click_rate_{long}d" for c in channels])
    b.lines("msg_topic_share_gap", GAP, "topic", shares)
    b.lines("msg_topic_share_rank", RANK, "topic", shares)
    b.lines("msg_topic_affinity_gap", GAP, "topic", affinities)
    b.lines("msg_topic_affinity_rank", RANK, "topic", affinities)
    b.lines(f"msg_topic_click_rate_{long}d", PICK, "topic", [f"topic_{t}_click_rate_{long}d" for t in topics])
    b.lines(f"msg_stage_click_rate_{short}d", PICK, "stage", stage_rates)
    b.lines("msg_stage_click_rate_gap", GAP, "stage", stage_rates)
    b.lines("msg_stage_click_rate_rank", RANK, "stage", stage_rates)
    b.put("msg_stage_match", STAGE_MATCH)
    b.put("msg_stage_gap", STAGE_GAP)
    attributes = tables.attributes
    for prefix, table, op in (("profile_", attributes.profile, PROFILE_ATTRIBUTE), ("msg_attr_", attributes.message, MESSAGE_ATTRIBUTE)):
        for name, (encoded, relative) in table.items():
            b.attribute(prefix + name, op, np.asarray(encoded, dtype=np.float64), relative)
    if "journey_stage" not in customer_index:
        raise UnsupportedProgram("no journey_stage among the customer columns")
    return RowProgram(tuple(b.names), np.array(b.code, dtype=np.int64).reshape(-1, _FIELDS), np.array(b.line_columns, dtype=np.int64),
                      np.concatenate([np.zeros(0), *b.data]), np.asarray(catalog.channel, dtype=np.int64),
                      np.asarray(catalog.topic, dtype=np.int64), np.asarray(catalog.stage, dtype=np.int64),
                      np.asarray(catalog.value, dtype=np.float64), np.asarray(catalog.valid_from_ns, dtype=np.float64),
                      customer_index["journey_stage"], len(spec.vocab.messages), len(topics),
                      np.asarray(catalog.offer, dtype=np.int64), np.array([w * NS_PER_DAY for w in windows], dtype=np.int64))


class _Builder:
    def __init__(self, customer_index: Mapping[str, int]) -> None:
        self._customer = customer_index
        self.names: list[str] = []
        self.code: list[int] = []
        self.line_columns: list[int] = []
        self.data: list[np.ndarray] = []
        self._data_length = 0

    def put(self, name: str, op: int, window: int = 0) -> None:
        self._emit(name, [op, 0, 0, 0, 0, 0, 0, window])

    def lines(self, name: str, op: int, source: str, columns: list[str]) -> None:
        missing = [c for c in columns if c not in self._customer]
        if missing:
            raise UnsupportedProgram(f"{name} reads customer columns the program does not write: {missing[:3]}")
        at = len(self.line_columns)
        self.line_columns.extend(self._customer[c] for c in columns)
        self._emit(name, [op, _SOURCES[source], at, len(columns), 0, 0, 0, 0])

    def attribute(self, name: str, op: int, encoded: np.ndarray, relative: bool) -> None:
        self._emit(name, [op, 0, 0, 0, self._data_length, len(encoded), int(relative), 0])
        self.data.append(encoded)
        self._data_length += len(encoded)

    def _emit(self, name: str, fields: list[int]) -> None:
        if name in self.names:
            raise UnsupportedProgram(f"row column {name} twice")  # build_encoded_features refuses it too
        self.names.append(name)
        self.code.extend(fields)
