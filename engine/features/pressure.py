"""Contact pressure and fatigue: how much the customer was contacted lately, overall and by channel/topic."""

from __future__ import annotations

from engine.features.context import Columns, FamilyContext

# The day and the week of contact policies (caps are per day and per week).
PRESSURE_WINDOWS = (1, 7)


def pressure_features(ctx: FamilyContext) -> Columns:
    h, r = ctx.history, ctx.requests
    out: Columns = {}
    for window in PRESSURE_WINDOWS:
        out[f"impressions_{window}d"] = h.count(("impression",), r, window_days=window)
        by_channel = h.count_by(("impression",), r, window_days=window, by="channel")
        for code, channel in enumerate(ctx.vocab.channels.values):
            out[f"{channel}_impressions_{window}d"] = by_channel[:, code]
    by_topic = h.count_by(("impression",), r, window_days=7, by="topic")
    for code, topic in enumerate(ctx.vocab.topics.values):
        out[f"topic_{topic}_impressions_7d"] = by_topic[:, code]
    return out
