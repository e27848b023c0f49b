"""Voice of the customer: what they think (surveys) and how often they needed help or complained."""

from __future__ import annotations

import numpy as np

from engine.features.context import Columns, FamilyContext

DETRACTOR_MAX = 6  # NPS: 0-6 detractor, 7-8 passive, 9-10 promoter
PROMOTER_MIN = 9


def nps_flags(score: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(is_detractor, is_promoter) as 0/1, NaN where there is no score."""
    known = ~np.isnan(score)
    detractor = np.where(known, (score <= DETRACTOR_MAX).astype(np.float64), np.nan)
    promoter = np.where(known, (score >= PROMOTER_MIN).astype(np.float64), np.nan)
    return detractor, promoter


def voice_features(ctx: FamilyContext) -> Columns:
    h, r = ctx.history, ctx.requests
    score = h.last_value(("survey",), r)
    detractor, promoter = nps_flags(score)
    out: Columns = {
        "last_survey_score": score,
        "days_since_last_survey": h.days_since_last(("survey",), r),
        "is_detractor": detractor,
        "is_promoter": promoter,
        "days_since_last_complaint": h.days_since_last(("complaint",), r),
    }
    for window in (ctx.short_window, ctx.long_window):
        out[f"support_count_{window}d"] = h.count(("support",), r, window_days=window)
        out[f"complaint_count_{window}d"] = h.count(("complaint",), r, window_days=window)
    return out
