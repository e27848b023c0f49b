"""Topic affinity: what the customer browses, clicks and buys, in counts, shares and with decay."""

from __future__ import annotations

import numpy as np

from engine.features.context import Columns, FamilyContext
from engine.features.engagement import smoothed_rate

# Signals of interest in a topic; the decayed affinity weighs each event the same.
INTEREST_TYPES = ("visit", "click", "purchase")


def share(part: np.ndarray, total: np.ndarray) -> np.ndarray:
    """part / total, NaN where the total is 0 (no evidence is not zero interest)."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, part / total, np.nan)


def affinity_features(ctx: FamilyContext) -> Columns:
    h, r = ctx.history, ctx.requests
    long = ctx.long_window
    all_visits = h.count(("visit",), r, window_days=long)
    visits_long = h.count_by(("visit",), r, window_days=long, by="topic")
    purchases = h.count_by(("purchase",), r, window_days=long, by="topic")
    clicks = h.count_by(("click",), r, window_days=long, by="topic")
    impressions = h.count_by(("impression",), r, window_days=long, by="topic")
    prior, strength = ctx.settings.prior_click_rate, ctx.settings.prior_strength
    decayed = h.decayed_count_by(INTEREST_TYPES, r, window_days=long, by="topic")
    # Clicks per impression on a topic: interest as shown by the customer's own responses. Rates and shares
    # of every topic at once (customers x topics): the same values as column by column, in two calls.
    click_rate = smoothed_rate(clicks, impressions, prior, strength)
    visit_share = share(visits_long, all_visits[:, None])
    out: Columns = {}
    for code, topic in enumerate(ctx.vocab.topics.values):
        out[f"topic_{topic}_visits_{long}d"] = visits_long[:, code]
        out[f"topic_{topic}_purchases_{long}d"] = purchases[:, code]
        out[f"topic_{topic}_clicks_{long}d"] = clicks[:, code]
        out[f"topic_{topic}_impressions_{long}d"] = impressions[:, code]
        out[f"topic_{topic}_click_rate_{long}d"] = click_rate[:, code]
        out[f"topic_{topic}_visit_share_{long}d"] = visit_share[:, code]
        out[f"topic_{topic}_affinity"] = decayed[:, code]
    return out
