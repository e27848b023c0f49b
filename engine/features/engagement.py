"""Channel engagement: impressions and responses per channel, and smoothed response rates."""

from __future__ import annotations

import numpy as np

from engine.features.context import Columns, FamilyContext

RESPONSES = ("open", "click", "conversion")


def smoothed_rate(responses: np.ndarray, impressions: np.ndarray, prior: float, strength: float) -> np.ndarray:
    """(responses + strength * prior) / (impressions + strength): 0 of 1 is not 0%, 0 of 0 is the prior."""
    return (responses + strength * prior) / (impressions + strength)


def engagement_features(ctx: FamilyContext) -> Columns:
    h, r, s = ctx.history, ctx.requests, ctx.settings
    long = ctx.long_window
    priors = {"open": s.prior_open_rate, "click": s.prior_click_rate, "conversion": s.prior_conversion_rate}
    impressions = h.count_by(("impression",), r, window_days=long, by="channel")
    # The rate carries the count (impressions are beside it), so counts are not repeated. Every channel's
    # rate at once (customers x channels), one call per kind.
    rates = {kind: smoothed_rate(h.count_by((kind,), r, window_days=long, by="channel"), impressions, priors[kind], s.prior_strength)
             for kind in RESPONSES}
    out: Columns = {}
    for code, channel in enumerate(ctx.vocab.channels.values):
        out[f"{channel}_impressions_{long}d"] = impressions[:, code]
        for kind in RESPONSES:
            out[f"{channel}_{kind}_rate_{long}d"] = rates[kind][:, code]
    return out
