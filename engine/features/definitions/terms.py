"""The small vocabulary every feature is written in (engine/features/definitions/groups.py holds the features).

A feature is a name and a term. A term says what the value is, not how to compute it: the interpreters
(:mod:`engine.features.numpy_interpreter` for training and batch, :mod:`engine.features.numba_interpreter`
for the API) each compute every term, and tests hold them equal to the last bit.

Times: an event counts for a decision at ``as_of`` when ``ts < as_of``; in a window of W days when
``as_of - W days <= ts < as_of`` (:mod:`engine.features.history`).

Terms written in the definitions may hold symbols that :func:`engine.features.definitions.resolve`
replaces for a catalog and settings: windows ``LONG``, ``SHORT`` and ``EACH`` (the window of an
:class:`Each` over windows), ``per`` (a count for one code of the channel, topic or journey stage the
feature's :class:`Each` runs over), column names with ``{channel}``, ``{topic}``, ``{stage}``,
``{long}``, ``{short}``, ``{window}``, and priors by response name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Union

Dimension = Literal["channel", "topic", "stage"]
# Symbolic windows: the longest and the second longest of [features] windows_days, and the window of the
# Each a feature is expanded in.
LONG, SHORT, EACH = "long", "short", "each"
Window = Union[int, Literal["long", "short", "each"], None]  # None: all history before as_of


# ---- what the customer did: questions to the history, one value per (customer, as_of)

@dataclass(frozen=True)
class Count:
    """Events of ``types`` before as_of, in the window (None: ever); with ``per``, only those of one code
    of that dimension (the event's channel, topic, or its message's journey stage). Compacted records count
    their weight."""

    types: tuple[str, ...]
    window: Window = None
    per: Dimension | None = None
    code: int | None = None  # set by resolve() for a feature of an Each over ``per``


@dataclass(frozen=True)
class DaysSince:
    """Days from the last event of ``types`` before as_of to as_of; NaN if there is none."""

    types: tuple[str, ...]


@dataclass(frozen=True)
class LastValue:
    """The value of the last event of ``types`` before as_of; NaN if there is none."""

    types: tuple[str, ...]


@dataclass(frozen=True)
class Sum:
    """The sum of the values of the events of ``types`` in the window (no value counts 0), exact to
    1/10,000 of a unit."""

    types: tuple[str, ...]
    window: Window


@dataclass(frozen=True)
class Decayed:
    """Events of ``types`` in the window, each weighing 2^(-age / [features] affinity_half_life_days)."""

    types: tuple[str, ...]
    window: Window
    per: Dimension | None = None
    code: int | None = None


# ---- arithmetic on other terms

@dataclass(frozen=True)
class Column:
    """The value of the feature of this name (written before it)."""

    name: str


@dataclass(frozen=True)
class Rate:
    """(responses + strength x prior) / (exposures + strength): 0 of 1 is not 0%, 0 of 0 is the prior.
    ``prior``: "open", "click" or "conversion" ([features] prior_*_rate); strength: [features] prior_strength."""

    responses: Term
    exposures: Term
    prior: str
    prior_rate: float = 0.0  # set by resolve()
    strength: float = 0.0


@dataclass(frozen=True)
class Share:
    """part / total; NaN where the total is 0 (no evidence is not zero)."""

    part: Term
    total: Term


@dataclass(frozen=True)
class Difference:
    """a - b."""

    a: Term
    b: Term


@dataclass(frozen=True)
class Stage:
    """The journey stage, the most advanced whose rule holds, as 0..3 (awareness, consideration, purchase,
    loyalty): loyalty: 2+ purchases ever, one in the long window; purchase: a purchase in the long window or
    a conversion in the short one; consideration: 2+ visits or a click in the short window."""

    purchases_ever: Term
    purchases_long: Term
    conversions_short: Term
    visits_short: Term
    clicks_short: Term


@dataclass(frozen=True)
class NpsGroup:
    """1 when the survey score is in the NPS group (detractor: 0-6, promoter: 9-10), else 0; NaN with no score."""

    score: Term
    group: Literal["detractor", "promoter"]


# ---- the candidate message: one value per (customer, as_of, message)

@dataclass(frozen=True)
class MessageFact:
    """A fact of the candidate from the catalog: its channel, topic or journey stage code, its value, or
    the days since it became valid (NaN: no candidate, no stage, or open-ended)."""

    fact: Literal["channel", "topic", "stage", "value", "days_since_valid_from"]


@dataclass(frozen=True)
class CandidateCount:
    """Events of ``types`` of the candidate message (``of="message"``) or of any message of its offer
    (``of="offer"``), before as_of, in the window; NaN for a row without a candidate."""

    types: tuple[str, ...]
    window: Window = None
    of: Literal["message", "offer"] = "message"


@dataclass(frozen=True)
class CandidateDaysSince:
    """Days since the last event of ``types`` of the candidate message or of its topic; NaN if none."""

    types: tuple[str, ...]
    of: Literal["message", "topic"] = "message"


@dataclass(frozen=True)
class Pick:
    """The customer's column for the candidate's own channel, topic or stage, e.g. ``topic_{topic}_affinity``
    read at the candidate's topic; NaN when the candidate has none."""

    column: str
    of: Dimension
    columns: tuple[str, ...] = ()  # set by resolve(): the column of each code


@dataclass(frozen=True)
class Gap:
    """That column minus the customer's best over all codes (missing counted as 0): 0 for the top one."""

    column: str
    of: Dimension
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rank:
    """1 + the codes whose column is above the candidate's (missing counted as 0; ties share the better rank)."""

    column: str
    of: Dimension
    columns: tuple[str, ...] = ()


@dataclass(frozen=True)
class StageFit:
    """How the candidate's journey stage meets the customer's (the ``journey_stage`` column): ``match`` 1 or
    0, or the ``gap`` (message's stage minus the customer's); NaN when the message has no stage."""

    how: Literal["match", "gap"]


@dataclass(frozen=True)
class Attribute:
    """An encoded column of the customers table (``source="profile"``) or of the catalog (``"message"``);
    a date is shown as days before as_of."""

    source: Literal["profile", "message"]
    column: str
    is_date: bool = False


Term = Union[Count, DaysSince, LastValue, Sum, Decayed, Column, Rate, Share, Difference, Stage, NpsGroup,
             MessageFact, CandidateCount, CandidateDaysSince, Pick, Gap, Rank, StageFit, Attribute]
CANDIDATE_TERMS = (MessageFact, CandidateCount, CandidateDaysSince, Pick, Gap, Rank, StageFit, Attribute)
# Per-candidate questions to the history: the costliest columns, left NaN when the model never reads them.
COSTLY_TERMS = (CandidateCount, CandidateDaysSince)


@dataclass(frozen=True)
class Feature:
    """One column (or, inside an :class:`Each`, one per code or window): its name, its term, and its label:
    what it is in a few words, as explanations show it and docs/features.md lists it (``{channel}``,
    ``{topic}``, ``{stage}`` name the code; ``{window}``, ``{long}``, ``{short}`` read "last 30 days")."""

    name: str
    term: Term
    label: str


@dataclass(frozen=True)
class Each:
    """The features repeated for each channel, topic or journey stage of the catalog (codes outer,
    features inner), or for each window: [features] windows_days, or ``windows`` if given."""

    over: Dimension | Literal["window"]
    features: tuple[Feature, ...]
    windows: tuple[Window, ...] = ()


@dataclass(frozen=True)
class OnlyWith:
    """Features that exist only when the catalog shares offers (``offer_id`` on two or more messages)."""

    condition: Literal["shared_offers"]
    items: tuple[Feature | Each, ...]


@dataclass(frozen=True)
class Group:
    """A family of features, in column order: customer-level or candidate-level."""

    name: str
    level: Literal["customer", "candidate"]
    items: tuple[Feature | Each | OnlyWith, ...]
    about: str
