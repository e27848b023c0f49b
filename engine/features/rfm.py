"""Recency, frequency, monetary: how recently and how often the customer visited, clicked, bought."""

from __future__ import annotations

import numpy as np

from engine.features.context import Columns, FamilyContext

ACTIVITY_TYPES = ("visit", "click", "purchase", "impression")


def rfm_features(ctx: FamilyContext) -> Columns:
    h, r = ctx.history, ctx.requests
    out: Columns = {}
    for kind in ACTIVITY_TYPES:
        out[f"days_since_last_{kind}"] = h.days_since_last((kind,), r)
        for window in ctx.settings.windows_days:
            out[f"{kind}_count_{window}d"] = h.count((kind,), r, window_days=window)
    for window in ctx.settings.windows_days:
        out[f"purchase_amount_sum_{window}d"] = h.value_sum(("purchase",), r, window_days=window)
    long = ctx.long_window
    with np.errstate(invalid="ignore", divide="ignore"):
        out[f"purchase_amount_avg_{long}d"] = np.where(
            out[f"purchase_count_{long}d"] > 0, out[f"purchase_amount_sum_{long}d"] / out[f"purchase_count_{long}d"], np.nan
        )
    return out
