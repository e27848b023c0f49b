"""Journey stage: awareness -> consideration -> purchase -> loyalty, inferred from behaviour."""

from __future__ import annotations

import numpy as np

from engine.contract.schema import JOURNEY_STAGES
from engine.features.context import Columns, FamilyContext
from engine.features.engagement import smoothed_rate

AWARENESS, CONSIDERATION, PURCHASE, LOYALTY = 0, 1, 2, 3


def infer_stage(
    purchases_lifetime: np.ndarray,
    purchases_long: np.ndarray,
    conversions_short: np.ndarray,
    visits_short: np.ndarray,
    clicks_short: np.ndarray,
) -> np.ndarray:
    """The most advanced stage whose rule holds (rules in docs/features.md), as 0..3.

    loyalty: 2+ purchases ever, one of them in the long window; purchase: a purchase in the long window
    or a conversion in the short one; consideration: 2+ visits or a click in the short window.
    """
    stage = np.full(len(purchases_lifetime), AWARENESS, dtype=np.float64)
    stage[(visits_short >= 2) | (clicks_short >= 1)] = CONSIDERATION
    stage[(purchases_long >= 1) | (conversions_short >= 1)] = PURCHASE
    stage[(purchases_lifetime >= 2) & (purchases_long >= 1)] = LOYALTY
    return stage


def journey_features(ctx: FamilyContext) -> Columns:
    h, r = ctx.history, ctx.requests
    long, short = ctx.long_window, ctx.short_window
    lifetime = h.count(("purchase",), r)
    conversions = h.count(("conversion",), r, window_days=short)
    stage = infer_stage(
        lifetime,
        h.count(("purchase",), r, window_days=long),
        conversions,
        h.count(("visit",), r, window_days=short),
        h.count(("click",), r, window_days=short),
    )
    out: Columns = {
        "purchase_count_lifetime": lifetime,
        # Purchases older than the long window: a returning buyer, not one in a first buying phase.
        f"purchase_count_before_{long}d": lifetime - h.count(("purchase",), r, window_days=long),
        f"conversion_count_{short}d": conversions,
        "journey_stage": stage,
    }
    # Which stage's messages the customer responds to lately reveals the stage better than any rule.
    impressions = h.count_by(("impression",), r, window_days=short, by="stage")
    clicks = h.count_by(("click",), r, window_days=short, by="stage")
    click_rate = smoothed_rate(clicks, impressions, ctx.settings.prior_click_rate, ctx.settings.prior_strength)
    for code, name in enumerate(JOURNEY_STAGES):
        out[f"stage_{name}_impressions_{short}d"] = impressions[:, code]
        out[f"stage_{name}_click_rate_{short}d"] = click_rate[:, code]
    return out
