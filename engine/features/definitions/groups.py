"""Every feature nbm builds, defined once, in column order (the vocabulary: terms.py).

Training, batch scoring and the API compute these columns through an interpreter
(:mod:`engine.features.numpy_interpreter`, :mod:`engine.features.numba_interpreter`); docs/features.md's
table is generated from this list (``python -m engine.features.definitions.docs``). To add a feature, add its
:class:`Feature` to a group and a test of its value on a hand-made history (tests/features/).
"""

from __future__ import annotations

from engine.features.definitions import terms as t
from engine.features.definitions.terms import EACH, LONG, SHORT, Each, Feature, Group, OnlyWith


def last_days(days: int) -> str:
    return "last day" if days == 1 else f"last {days} days"


# Signals of interest in a topic; the decayed affinity weighs each the same.
INTEREST_TYPES = ("visit", "click", "purchase")
RESPONSES = ("open", "click", "conversion")


_SINGULAR = {"impression": "message shown"}
_PLURAL = {"impression": "messages shown"}


def _activity(kind: str) -> tuple[Feature | Each, ...]:
    return (
        Feature(f"days_since_last_{kind}", t.DaysSince((kind,)), f"days since the last {_SINGULAR.get(kind, kind)}"),
        Each("window", (Feature(f"{kind}_count_{{window}}d", t.Count((kind,), EACH), f"{_PLURAL.get(kind, kind + 's')} in the {{window}}"),)),
    )


RFM = Group("rfm", "customer", (
    *_activity("visit"), *_activity("click"), *_activity("purchase"), *_activity("impression"),
    Each("window", (Feature("purchase_amount_sum_{window}d", t.Sum(("purchase",), EACH), "purchase amount in the {window}"),)),
    Feature("purchase_amount_avg_{long}d", t.Share(t.Column("purchase_amount_sum_{long}d"), t.Column("purchase_count_{long}d")),
            "average purchase amount over the {long}"),
), "Recency, frequency, monetary: how recently and how often the customer visited, clicked, bought.")


def _channel_rate(kind: str) -> Feature:
    return Feature(f"{{channel}}_{kind}_rate_{{long}}d",
                   t.Rate(t.Count((kind,), LONG, "channel"), t.Count(("impression",), LONG, "channel"), kind),
                   f"{kind} rate on {{channel}} over the {{long}}")


ENGAGEMENT = Group("engagement", "customer", (
    Each("channel", (
        Feature("{channel}_impressions_{long}d", t.Count(("impression",), LONG, "channel"), "messages shown on {channel} in the {long}"),
        *(_channel_rate(kind) for kind in RESPONSES),
    )),
    Feature("days_since_last_open", t.DaysSince(("open",)), "days since the last open"),
), "Channel engagement: impressions and responses per channel, and smoothed response rates.")

AFFINITY = Group("affinity", "customer", (
    Each("topic", (
        Feature("topic_{topic}_visits_{long}d", t.Count(("visit",), LONG, "topic"), "visits on {topic} in the {long}"),
        Feature("topic_{topic}_purchases_{long}d", t.Count(("purchase",), LONG, "topic"), "purchases on {topic} in the {long}"),
        Feature("topic_{topic}_clicks_{long}d", t.Count(("click",), LONG, "topic"), "clicks on {topic} in the {long}"),
        Feature("topic_{topic}_impressions_{long}d", t.Count(("impression",), LONG, "topic"), "messages about {topic} shown in the {long}"),
        Feature("topic_{topic}_click_rate_{long}d",
                t.Rate(t.Count(("click",), LONG, "topic"), t.Count(("impression",), LONG, "topic"), "click"),
                "click rate on messages about {topic} over the {long}"),
        Feature("topic_{topic}_visit_share_{long}d", t.Share(t.Count(("visit",), LONG, "topic"), t.Count(("visit",), LONG)),
                "share of visits on {topic} over the {long}"),
        Feature("topic_{topic}_affinity", t.Decayed(INTEREST_TYPES, LONG, "topic"),
                "recent interest in {topic}"),
    )),
), "Topic affinity: what the customer browses, clicks and buys, in counts, shares and with decay.")

JOURNEY = Group("journey", "customer", (
    Feature("purchase_count_lifetime", t.Count(("purchase",)), "purchases ever"),
    Feature("purchase_count_before_{long}d", t.Difference(t.Count(("purchase",)), t.Count(("purchase",), LONG)),
            "purchases before the {long}"),
    Feature("conversion_count_{short}d", t.Count(("conversion",), SHORT), "conversions in the {short}"),
    Feature("journey_stage", t.Stage(t.Count(("purchase",)), t.Count(("purchase",), LONG), t.Count(("conversion",), SHORT),
                                     t.Count(("visit",), SHORT), t.Count(("click",), SHORT)),
            "journey stage"),
    Each("stage", (
        Feature("stage_{stage}_impressions_{short}d", t.Count(("impression",), SHORT, "stage"),
                "{stage}-stage messages shown in the {short}"),
        Feature("stage_{stage}_click_rate_{short}d",
                t.Rate(t.Count(("click",), SHORT, "stage"), t.Count(("impression",), SHORT, "stage"), "click"),
                "click rate on {stage}-stage messages over the {short}"),
    )),
), "Journey stage: awareness -> consideration -> purchase -> loyalty, inferred from behaviour. `journey_stage` is "
   "the most advanced stage whose rule holds: 3 loyalty (2+ purchases ever, one in the long window L), 2 purchase (a "
   "purchase in L or a conversion in the short window S), 1 consideration (2+ visits or a click in S), else 0 awareness. "
   "Which stage's messages the customer clicks lately reveals the stage better than any rule: hence the per-stage rates.")

VOICE = Group("voice", "customer", (
    Feature("last_survey_score", t.LastValue(("survey",)), "last survey score"),
    Feature("days_since_last_survey", t.DaysSince(("survey",)), "days since the last survey"),
    Feature("is_detractor", t.NpsGroup(t.LastValue(("survey",)), "detractor"), "is a detractor (survey score 6 or less)"),
    Feature("is_promoter", t.NpsGroup(t.LastValue(("survey",)), "promoter"), "is a promoter (survey score 9 or more)"),
    Feature("days_since_last_complaint", t.DaysSince(("complaint",)), "days since the last complaint"),
    Each("window", (
        Feature("support_count_{window}d", t.Count(("support",), EACH), "support contacts in the {window}"),
        Feature("complaint_count_{window}d", t.Count(("complaint",), EACH), "complaints in the {window}"),
    ), windows=(SHORT, LONG)),
), "Voice of the customer: what they think (surveys) and how often they needed help or complained.")

# The day and the week of contact policies (caps are per day and per week).
PRESSURE_WINDOWS = (1, 7)




PRESSURE = Group("pressure", "customer", (
    *(item for window in PRESSURE_WINDOWS for item in (
        Feature(f"impressions_{window}d", t.Count(("impression",), window), f"messages shown in the {last_days(window)}"),
        Each("channel", (Feature(f"{{channel}}_impressions_{window}d", t.Count(("impression",), window, "channel"),
                                 f"messages shown on {{channel}} in the {last_days(window)}"),)),
    )),
    Each("topic", (Feature("topic_{topic}_impressions_7d", t.Count(("impression",), 7, "topic"), "messages about {topic} shown in the last 7 days"),)),
), "Contact pressure and fatigue: how much the customer was contacted lately, overall and by channel/topic.")

CANDIDATE = Group("candidate", "candidate", (
    Feature("msg_channel", t.MessageFact("channel"), "the message's channel"),
    Feature("msg_topic", t.MessageFact("topic"), "the message's topic"),
    Feature("msg_stage", t.MessageFact("stage"), "the message's journey stage"),
    Feature("msg_value", t.MessageFact("value"), "the message's value"),
    Feature("msg_days_since_valid_from", t.MessageFact("days_since_valid_from"), "days since the message went live"),
    Feature("msg_seen_count", t.CandidateCount(("impression",)), "times this message was shown"),
    Feature("msg_days_since_shown", t.CandidateDaysSince(("impression",)), "days since this message was last shown"),
    Feature("msg_topic_days_since_shown", t.CandidateDaysSince(("impression",), "topic"),
            "days since a message on this topic was last shown"),
    OnlyWith("shared_offers", (Each("window", (
        Feature("msg_offer_impressions_{window}d", t.CandidateCount(("impression",), EACH, "offer"),
                "times this offer was shown on any channel in the {window}"),)),)),
    Feature("msg_topic_impressions_7d", t.Pick("topic_{topic}_impressions_7d", "topic"), "messages about the message's topic shown in the last 7 days"),
    Feature("msg_channel_impressions_1d", t.Pick("{channel}_impressions_1d", "channel"), "messages shown on the message's channel in the last day"),
    Feature("msg_topic_affinity", t.Pick("topic_{topic}_affinity", "topic"), "recent interest in the message's topic"),
    Feature("msg_topic_visit_share_{long}d", t.Pick("topic_{topic}_visit_share_{long}d", "topic"), "share of visits on the message's topic over the {long}"),
    Feature("msg_channel_click_rate_{long}d", t.Pick("{channel}_click_rate_{long}d", "channel"), "click rate on the message's channel over the {long}"),
    Feature("msg_topic_share_gap", t.Gap("topic_{topic}_visit_share_{long}d", "topic"),
            "share of visits on the message's topic vs the top topic"),
    Feature("msg_topic_share_rank", t.Rank("topic_{topic}_visit_share_{long}d", "topic"), "rank of the message's topic by visits"),
    Feature("msg_topic_affinity_gap", t.Gap("topic_{topic}_affinity", "topic"), "interest in the message's topic vs the top topic"),
    Feature("msg_topic_affinity_rank", t.Rank("topic_{topic}_affinity", "topic"), "rank of the message's topic by interest"),
    Feature("msg_topic_click_rate_{long}d", t.Pick("topic_{topic}_click_rate_{long}d", "topic"), "click rate on messages about the message's topic over the {long}"),
    Feature("msg_stage_click_rate_{short}d", t.Pick("stage_{stage}_click_rate_{short}d", "stage"),
            "click rate on same-stage messages over the {short}"),
    Feature("msg_stage_click_rate_gap", t.Gap("stage_{stage}_click_rate_{short}d", "stage"),
            "click rate on the message's stage vs the best stage"),
    Feature("msg_stage_click_rate_rank", t.Rank("stage_{stage}_click_rate_{short}d", "stage"), "rank of the message's stage by click rate"),
    Feature("msg_stage_match", t.StageFit("match"), "message fits the customer's journey stage"),
    Feature("msg_stage_gap", t.StageFit("gap"), "message stage ahead of the customer's"),
), "Features of a candidate message: its own attributes and how they meet the customer's.")

GROUPS: tuple[Group, ...] = (RFM, ENGAGEMENT, AFFINITY, JOURNEY, VOICE, PRESSURE, CANDIDATE)
