"""Features of a candidate message for a customer: its own attributes and how they meet the customer's.

Cross features read the customer's per-channel and per-topic columns at the candidate's channel and
topic, so they cost a gather, not another pass over the history.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from engine.contract.schema import JOURNEY_STAGES
from engine.features.context import Columns, FamilyContext
from engine.timeutil import NS_PER_DAY



@dataclass(frozen=True, eq=False)
class Candidates:
    """Per request row: the candidate's codes (-1 when the row has no candidate) and catalog facts."""

    message: np.ndarray
    channel: np.ndarray
    topic: np.ndarray
    stage: np.ndarray
    value: np.ndarray
    valid_from_ns: np.ndarray  # NaN when open-ended


def _pick(customer: Columns, template: str, names: tuple[str, ...], rows: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """customer[template.format(names[code])][rows], NaN where code < 0."""
    if not names:
        return np.full(len(rows), np.nan)
    # One gather from the (rows x names) block: a loop over names costs a mask per name.
    columns = [customer[template.format(name)] for name in names]
    block = np.array([*columns, np.full(len(columns[0]), np.nan)], dtype=np.float64).T
    return block[rows, np.where((codes >= 0) & (codes < len(names)), codes, len(names))]


def _standing(customer: Columns, template: str, names: tuple[str, ...], rows: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How the candidate's topic stands among the customer's topics on one per-topic column:
    (its value minus the customer's best value, its rank with 1 = best; ties share the better rank)."""
    if not names:
        empty = np.full(len(rows), np.nan)
        return empty, empty
    # Per (customer, as_of) pair and code first, then one gather per row: a pair has hundreds of
    # candidate rows but only a few codes.
    filled = np.nan_to_num(np.array([customer[template.format(name)] for name in names], dtype=np.float64).T, nan=0.0)
    gaps = filled - filled.max(axis=1)[:, None]
    ranks = 1.0 + (filled[:, None, :] > filled[:, :, None]).sum(axis=2)
    known = codes >= 0
    at = np.maximum(codes, 0)
    return np.where(known, gaps[rows, at], np.nan), np.where(known, ranks[rows, at], np.nan)


def candidate_features(ctx: FamilyContext, cand: Candidates, customer: Columns, pair: np.ndarray) -> Columns:
    """``ctx.requests`` are the request rows; ``customer`` holds customer-level columns per (customer,
    as_of) pair and ``pair`` maps each row to its pair."""
    h, r = ctx.history, ctx.requests
    topics, channels = ctx.vocab.topics.values, ctx.vocab.channels.values
    long = ctx.long_window
    has = cand.message >= 0
    stage = customer["journey_stage"][pair]
    # The choice among one channel's messages turns on relative interest: is this the customer's top topic?
    share_gap, share_rank = _standing(customer, f"topic_{{}}_visit_share_{long}d", topics, pair, cand.topic)
    affinity_gap, affinity_rank = _standing(customer, "topic_{}_affinity", topics, pair, cand.topic)
    short = ctx.short_window
    stage_gap, stage_rank = _standing(customer, f"stage_{{}}_click_rate_{short}d", JOURNEY_STAGES, pair, cand.stage)
    with np.errstate(invalid="ignore"):
        stage_known = has & (cand.stage >= 0)
        out: Columns = {
            "msg_channel": np.where(has, cand.channel, np.nan),
            "msg_topic": np.where(has, cand.topic, np.nan),
            "msg_stage": np.where(stage_known, cand.stage, np.nan),
            "msg_value": np.where(has, cand.value, np.nan),
            "msg_days_since_valid_from": (r.as_of - cand.valid_from_ns) / NS_PER_DAY,
            "msg_seen_count": np.where(has, h.count(("impression",), r, by="message", sub=cand.message), np.nan),
            "msg_days_since_shown": h.days_since_last(("impression",), r, by="message", sub=cand.message),
            "msg_topic_days_since_shown": h.days_since_last(("impression",), r, by="topic", sub=cand.topic),
            "msg_topic_impressions_7d": _pick(customer, "topic_{}_impressions_7d", topics, pair, cand.topic),
            "msg_channel_impressions_1d": _pick(customer, "{}_impressions_1d", channels, pair, cand.channel),
            "msg_topic_affinity": _pick(customer, "topic_{}_affinity", topics, pair, cand.topic),
            f"msg_topic_visit_share_{long}d": _pick(customer, f"topic_{{}}_visit_share_{long}d", topics, pair, cand.topic),
            f"msg_channel_click_rate_{long}d": _pick(customer, f"{{}}_click_rate_{long}d", channels, pair, cand.channel),
            "msg_topic_share_gap": share_gap,
            "msg_topic_share_rank": share_rank,
            "msg_topic_affinity_gap": affinity_gap,
            "msg_topic_affinity_rank": affinity_rank,
            f"msg_topic_click_rate_{long}d": _pick(customer, f"topic_{{}}_click_rate_{long}d", topics, pair, cand.topic),
            f"msg_stage_click_rate_{short}d": _pick(customer, f"stage_{{}}_click_rate_{short}d", JOURNEY_STAGES, pair, cand.stage),
            "msg_stage_click_rate_gap": stage_gap,
            "msg_stage_click_rate_rank": stage_rank,
            "msg_stage_match": np.where(stage_known, (cand.stage == stage).astype(np.float64), np.nan),
            "msg_stage_gap": np.where(stage_known, cand.stage - stage, np.nan),
        }
    return out
