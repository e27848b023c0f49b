"""Every feature nbm builds, defined once, in column order (the vocabulary: engine/features/terms.py).

Training, batch scoring and the API compute these columns through an interpreter
(:mod:`engine.features.numpy_interpreter`, :mod:`engine.features.numba_interpreter`); docs/features.md's
table is generated from this list (``python -m engine.features.docs``). To add a feature, add its
:class:`Feature` to a group and a test of its value on a hand-made history (tests/features/).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace
from functools import cached_property

from engine.config import FeatureSettings
from engine.contract.schema import JOURNEY_STAGES
from engine.features import terms as t
from engine.features.terms import EACH, LONG, SHORT, Each, Feature, Group, OnlyWith

# Signals of interest in a topic; the decayed affinity weighs each the same.
INTEREST_TYPES = ("visit", "click", "purchase")
RESPONSES = ("open", "click", "conversion")


def _activity(kind: str) -> tuple[Feature | Each, ...]:
    return (
        Feature(f"days_since_last_{kind}", t.DaysSince((kind,)), f"days since the last {kind}"),
        Each("window", (Feature(f"{kind}_count_{{window}}d", t.Count((kind,), EACH), f"{kind} events in the window"),)),
    )


RFM = Group("rfm", "customer", (
    *_activity("visit"), *_activity("click"), *_activity("purchase"), *_activity("impression"),
    Each("window", (Feature("purchase_amount_sum_{window}d", t.Sum(("purchase",), EACH), "purchase amounts in the window"),)),
    Feature("purchase_amount_avg_{long}d", t.Share(t.Column("purchase_amount_sum_{long}d"), t.Column("purchase_count_{long}d")),
            "average purchase amount in the long window (NaN without a purchase)"),
), "Recency, frequency, monetary: how recently and how often the customer visited, clicked, bought.")


def _channel_rate(kind: str) -> Feature:
    return Feature(f"{{channel}}_{kind}_rate_{{long}}d",
                   t.Rate(t.Count((kind,), LONG, "channel"), t.Count(("impression",), LONG, "channel"), kind),
                   f"smoothed {kind} rate of the channel's impressions in the long window")


ENGAGEMENT = Group("engagement", "customer", (
    Each("channel", (
        Feature("{channel}_impressions_{long}d", t.Count(("impression",), LONG, "channel"), "impressions on the channel in the long window"),
        *(_channel_rate(kind) for kind in RESPONSES),
    )),
    Feature("days_since_last_open", t.DaysSince(("open",)), "days since the customer last opened a message, on any channel"),
), "Channel engagement: impressions and responses per channel, and smoothed response rates.")

AFFINITY = Group("affinity", "customer", (
    Each("topic", (
        Feature("topic_{topic}_visits_{long}d", t.Count(("visit",), LONG, "topic"), "visits of the topic in the long window"),
        Feature("topic_{topic}_purchases_{long}d", t.Count(("purchase",), LONG, "topic"), "purchases in the topic in the long window"),
        Feature("topic_{topic}_clicks_{long}d", t.Count(("click",), LONG, "topic"), "clicks on the topic's messages in the long window"),
        Feature("topic_{topic}_impressions_{long}d", t.Count(("impression",), LONG, "topic"), "impressions of the topic's messages in the long window"),
        Feature("topic_{topic}_click_rate_{long}d",
                t.Rate(t.Count(("click",), LONG, "topic"), t.Count(("impression",), LONG, "topic"), "click"),
                "smoothed click rate of the topic's impressions"),
        Feature("topic_{topic}_visit_share_{long}d", t.Share(t.Count(("visit",), LONG, "topic"), t.Count(("visit",), LONG)),
                "the topic's share of the customer's visits (NaN without visits)"),
        Feature("topic_{topic}_affinity", t.Decayed(INTEREST_TYPES, LONG, "topic"),
                "visits, clicks and purchases in the topic, each halved every affinity_half_life_days"),
    )),
), "Topic affinity: what the customer browses, clicks and buys, in counts, shares and with decay.")

JOURNEY = Group("journey", "customer", (
    Feature("purchase_count_lifetime", t.Count(("purchase",)), "purchases ever"),
    Feature("purchase_count_before_{long}d", t.Difference(t.Count(("purchase",)), t.Count(("purchase",), LONG)),
            "purchases older than the long window (a returning buyer)"),
    Feature("conversion_count_{short}d", t.Count(("conversion",), SHORT), "conversions in the short window"),
    Feature("journey_stage", t.Stage(t.Count(("purchase",)), t.Count(("purchase",), LONG), t.Count(("conversion",), SHORT),
                                     t.Count(("visit",), SHORT), t.Count(("click",), SHORT)),
            "0 awareness, 1 consideration (2+ visits or a click in the short window), 2 purchase (a purchase in the "
            "long window or a conversion in the short), 3 loyalty (2+ purchases ever, one in the long window)"),
    Each("stage", (
        Feature("stage_{stage}_impressions_{short}d", t.Count(("impression",), SHORT, "stage"),
                "impressions of the stage's messages in the short window"),
        Feature("stage_{stage}_click_rate_{short}d",
                t.Rate(t.Count(("click",), SHORT, "stage"), t.Count(("impression",), SHORT, "stage"), "click"),
                "smoothed click rate on the stage's messages: which stage the customer responds to lately"),
    )),
), "Journey stage: awareness -> consideration -> purchase -> loyalty, inferred from behaviour.")

VOICE = Group("voice", "customer", (
    Feature("last_survey_score", t.LastValue(("survey",)), "the last survey score (NPS 0-10)"),
    Feature("days_since_last_survey", t.DaysSince(("survey",)), "days since the last survey"),
    Feature("is_detractor", t.NpsGroup(t.LastValue(("survey",)), "detractor"), "1 when the last score is 0-6"),
    Feature("is_promoter", t.NpsGroup(t.LastValue(("survey",)), "promoter"), "1 when the last score is 9-10"),
    Feature("days_since_last_complaint", t.DaysSince(("complaint",)), "days since the last complaint"),
    Each("window", (
        Feature("support_count_{window}d", t.Count(("support",), EACH), "support contacts in the window"),
        Feature("complaint_count_{window}d", t.Count(("complaint",), EACH), "complaints in the window"),
    ), windows=(SHORT, LONG)),
), "Voice of the customer: what they think (surveys) and how often they needed help or complained.")

# The day and the week of contact policies (caps are per day and per week).
PRESSURE_WINDOWS = (1, 7)

PRESSURE = Group("pressure", "customer", (
    *(item for window in PRESSURE_WINDOWS for item in (
        Feature(f"impressions_{window}d", t.Count(("impression",), window), f"impressions on any channel in {window} d"),
        Each("channel", (Feature(f"{{channel}}_impressions_{window}d", t.Count(("impression",), window, "channel"),
                                 f"impressions on the channel in {window} d"),)),
    )),
    Each("topic", (Feature("topic_{topic}_impressions_7d", t.Count(("impression",), 7, "topic"), "impressions of the topic in 7 d"),)),
), "Contact pressure and fatigue: how much the customer was contacted lately, overall and by channel/topic.")

CANDIDATE = Group("candidate", "candidate", (
    Feature("msg_channel", t.MessageFact("channel"), "the candidate's channel code"),
    Feature("msg_topic", t.MessageFact("topic"), "the candidate's topic code"),
    Feature("msg_stage", t.MessageFact("stage"), "the candidate's journey stage code"),
    Feature("msg_value", t.MessageFact("value"), "the candidate's value in the catalog"),
    Feature("msg_days_since_valid_from", t.MessageFact("days_since_valid_from"), "days since the candidate became valid"),
    Feature("msg_seen_count", t.CandidateCount(("impression",)), "times the customer was shown the candidate"),
    Feature("msg_days_since_shown", t.CandidateDaysSince(("impression",)), "days since the customer was last shown it"),
    Feature("msg_topic_days_since_shown", t.CandidateDaysSince(("impression",), "topic"),
            "days since the customer was last shown a message of its topic"),
    OnlyWith("shared_offers", (Each("window", (
        Feature("msg_offer_impressions_{window}d", t.CandidateCount(("impression",), EACH, "offer"),
                "impressions of the candidate's offer, on any channel, in the window"),)),)),
    Feature("msg_topic_impressions_7d", t.Pick("topic_{topic}_impressions_7d", "topic"), "impressions of its topic in 7 d"),
    Feature("msg_channel_impressions_1d", t.Pick("{channel}_impressions_1d", "channel"), "impressions on its channel in 1 d"),
    Feature("msg_topic_affinity", t.Pick("topic_{topic}_affinity", "topic"), "the customer's decayed affinity for its topic"),
    Feature("msg_topic_visit_share_{long}d", t.Pick("topic_{topic}_visit_share_{long}d", "topic"), "its topic's share of visits"),
    Feature("msg_channel_click_rate_{long}d", t.Pick("{channel}_click_rate_{long}d", "channel"), "the click rate on its channel"),
    Feature("msg_topic_share_gap", t.Gap("topic_{topic}_visit_share_{long}d", "topic"),
            "its topic's visit share minus the customer's top topic's"),
    Feature("msg_topic_share_rank", t.Rank("topic_{topic}_visit_share_{long}d", "topic"), "its topic's rank by visit share (1: top)"),
    Feature("msg_topic_affinity_gap", t.Gap("topic_{topic}_affinity", "topic"), "its topic's affinity minus the top topic's"),
    Feature("msg_topic_affinity_rank", t.Rank("topic_{topic}_affinity", "topic"), "its topic's rank by affinity (1: top)"),
    Feature("msg_topic_click_rate_{long}d", t.Pick("topic_{topic}_click_rate_{long}d", "topic"), "the click rate on its topic"),
    Feature("msg_stage_click_rate_{short}d", t.Pick("stage_{stage}_click_rate_{short}d", "stage"),
            "the click rate on its journey stage's messages"),
    Feature("msg_stage_click_rate_gap", t.Gap("stage_{stage}_click_rate_{short}d", "stage"),
            "that rate minus the customer's best stage's"),
    Feature("msg_stage_click_rate_rank", t.Rank("stage_{stage}_click_rate_{short}d", "stage"), "its stage's rank by that rate"),
    Feature("msg_stage_match", t.StageFit("match"), "1 when its journey stage is the customer's"),
    Feature("msg_stage_gap", t.StageFit("gap"), "its journey stage minus the customer's"),
), "Features of a candidate message: its own attributes and how they meet the customer's.")

GROUPS: tuple[Group, ...] = (RFM, ENGAGEMENT, AFFINITY, JOURNEY, VOICE, PRESSURE, CANDIDATE)
ATTRIBUTE_PREFIXES = {"profile": "profile_", "message": "msg_attr_"}


# ---- resolving the definitions for one catalog and settings

@dataclass(frozen=True)
class Catalog:
    """What the definitions are resolved against: the catalog's channels and topics (in code order), the
    journey stages, whether offers are shared, and the encoded attribute columns (name, is a date)."""

    channels: tuple[str, ...]
    topics: tuple[str, ...]
    shared_offers: bool = False
    profile_attributes: tuple[tuple[str, bool], ...] = ()
    message_attributes: tuple[tuple[str, bool], ...] = ()
    stages: tuple[str, ...] = JOURNEY_STAGES


@dataclass(frozen=True)
class Resolved:
    """The features as columns: names in order and each one's concrete term (no symbol left), customer
    level first, then candidate level (the attribute columns last)."""

    customer: tuple[tuple[str, t.Term], ...]
    candidate: tuple[tuple[str, t.Term], ...]

    @cached_property
    def names(self) -> tuple[str, ...]:
        return (*(n for n, _ in self.customer), *(n for n, _ in self.candidate))

    @cached_property
    def terms(self) -> dict[str, t.Term]:
        return dict((*self.customer, *self.candidate))

    def level_of(self, names: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
        """``names`` split into customer-level and candidate-level ones, each in the order given; a name
        that no definition gives raises :class:`UnknownFeatures`."""
        customer = {n for n, _ in self.customer}
        candidate = {n for n, _ in self.candidate}
        unknown = [n for n in names if n not in customer and n not in candidate]
        if unknown:
            raise UnknownFeatures(tuple(unknown))
        return tuple(n for n in names if n in customer), tuple(n for n in names if n in candidate)


class UnknownFeatures(KeyError):
    """Columns that no definition gives (a model trained by another nbm)."""

    def __init__(self, names: tuple[str, ...]) -> None:
        super().__init__(names)
        self.names = names


def resolve(settings: FeatureSettings, catalog: Catalog, groups: Iterable[Group] = GROUPS) -> Resolved:
    """Every feature's name and concrete term for this catalog and these settings. A name written twice
    keeps its first place and its last term (as a dict does)."""
    levels: dict[str, dict[str, t.Term]] = {"customer": {}, "candidate": {}}
    for group in groups:
        for name, term in _expand(group.items, settings, catalog, {}):
            levels[group.level][name] = term
    for source, columns in (("profile", catalog.profile_attributes), ("message", catalog.message_attributes)):
        for column, is_date in columns:
            levels["candidate"][ATTRIBUTE_PREFIXES[source] + column] = t.Attribute(source, column, is_date)
    clash = levels["customer"].keys() & levels["candidate"].keys()
    if clash:
        raise ValueError(f"feature definitions name the same column twice: {sorted(clash)[:5]}")
    return Resolved(tuple(levels["customer"].items()), tuple(levels["candidate"].items()))


def _expand(items, settings: FeatureSettings, catalog: Catalog, at: dict) -> Iterable[tuple[str, t.Term]]:
    for item in items:
        if isinstance(item, Feature):
            yield _name(item.name, settings, at), _concrete(item.term, settings, catalog, at)
        elif isinstance(item, OnlyWith):
            if item.condition == "shared_offers" and catalog.shared_offers:
                yield from _expand(item.items, settings, catalog, at)
        elif isinstance(item, Each):
            if item.over == "window":
                for window in item.windows or settings.windows_days:
                    yield from _expand(item.features, settings, catalog, {**at, "window": _window(window, settings, at)})
            else:
                for code, value in enumerate(_values(item.over, catalog)):
                    yield from _expand(item.features, settings, catalog, {**at, item.over: (code, value)})
        else:
            raise TypeError(f"not a feature definition: {item!r}")


def _values(dimension: str, catalog: Catalog) -> tuple[str, ...]:
    return {"channel": catalog.channels, "topic": catalog.topics, "stage": catalog.stages}[dimension]


def long_window(settings: FeatureSettings) -> int:
    return settings.windows_days[-1]


def short_window(settings: FeatureSettings) -> int:
    windows = settings.windows_days
    return windows[-2] if len(windows) > 1 else windows[-1]


def _window(window: t.Window, settings: FeatureSettings, at: dict) -> int | None:
    if window == LONG:
        return long_window(settings)
    if window == SHORT:
        return short_window(settings)
    if window == EACH:
        if "window" not in at:
            raise ValueError("a window EACH outside an Each over windows")
        return at["window"]
    return window  # type: ignore[return-value]


def _name(template: str, settings: FeatureSettings, at: dict) -> str:
    values = {"long": long_window(settings), "short": short_window(settings)}
    values.update({key: (value[1] if isinstance(value, tuple) else value) for key, value in at.items()})
    try:
        return template.format(**values)
    except KeyError as missing:
        raise ValueError(f"feature {template!r} names {missing} outside an Each over it") from None


_PRIORS = {"open": "prior_open_rate", "click": "prior_click_rate", "conversion": "prior_conversion_rate"}


def _concrete(term, settings: FeatureSettings, catalog: Catalog, at: dict):
    """``term`` with every symbol replaced (module docstring of engine.features.terms)."""
    changes = {}
    for field in fields(term):
        value = getattr(term, field.name)
        if is_dataclass(value):
            changes[field.name] = _concrete(value, settings, catalog, at)
        elif field.name == "window":
            changes[field.name] = _window(value, settings, at)
    if isinstance(term, (t.Count, t.Decayed)) and term.per is not None:
        if term.per not in at:
            raise ValueError(f"{term!r} counts per {term.per} outside an Each over {term.per}")
        changes["code"] = at[term.per][0]
    if isinstance(term, t.Column):
        changes["name"] = _name(term.name, settings, at)
    if isinstance(term, t.Rate):
        changes["prior_rate"] = float(getattr(settings, _PRIORS[term.prior]))
        changes["strength"] = float(settings.prior_strength)
    if isinstance(term, (t.Pick, t.Gap, t.Rank)):
        changes["columns"] = tuple(_name(term.column, settings, {**at, term.of: (code, value)})
                                   for code, value in enumerate(_values(term.of, catalog)))
    return replace(term, **changes) if changes else term
