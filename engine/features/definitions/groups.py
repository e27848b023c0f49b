"""Every feature nbm builds, defined once, in column order (the vocabulary: terms.py).

Training, batch scoring and the API compute these columns through an interpreter
(:mod:`engine.features.numpy_interpreter`, :mod:`engine.features.numba_interpreter`); docs/features.md's
table is generated from this list (``python -m engine.features.definitions.docs``). To add a feature, add its
:class:`Feature` to a group and a test of its value on a hand-made history (tests/features/).
"""

from __future__ import annotations

from engine.features.definitions import terms as t
from engine.features.definitions.terms import EACH, LONG, SHORT, Each, Feature, Group, OnlyWith

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
