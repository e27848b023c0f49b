"""Features of a candidate message for a customer: its own attributes and how they meet the customer's.

Cross features read the customer's per-channel and per-topic columns at the candidate's channel and
topic, so they cost a gather, not another pass over the history.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

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
    offer: np.ndarray | None = None  # the offer code (-1: no candidate); None when no offer is shared: no offer columns


def _at(rows: np.ndarray, codes: np.ndarray, width: int, pairs: int) -> np.ndarray:
    """Each row's place in a (width + 1) x pairs block of per-pair columns, flattened: its pair's value
    under its code, or the last line (NaN) where the code is not one of the ``width`` names. One index per
    vocabulary serves every feature that reads a column per name of it."""
    codes = np.asarray(codes, dtype=np.int64)  # codes come as int16 and int32: their product with pairs must not wrap
    return np.where((codes >= 0) & (codes < width), codes, width) * pairs + np.asarray(rows, dtype=np.int64)


@lru_cache(maxsize=256)
def _column_names(template: str, names: tuple[str, ...]) -> tuple[str, ...]:
    # Formatted once per process: a serving batch asks for the same few hundred names every time.
    return tuple(template.format(name) for name in names)


def _lines(customer: Columns, template: str, names: tuple[str, ...], pairs: int) -> np.ndarray:
    """customer[template.format(name)] for each name, one line each, and a last line of NaN
    ((names + 1) x pairs): flattened, the block that :func:`_at` indexes."""
    lines = np.empty((len(names) + 1, pairs), dtype=np.float64)
    for line, column in zip(lines, _column_names(template, names)):
        line[:] = customer[column]
    lines[-1] = np.nan
    return lines


def _pick(customer: Columns, template: str, names: tuple[str, ...], pairs: int, at: np.ndarray) -> np.ndarray:
    """customer[template.format(names[code])][pair] for each row (its place ``at``, :func:`_at`), NaN
    where the row's code is none of the names."""
    return _lines(customer, template, names, pairs).ravel()[at]


def _standing(lines: np.ndarray, at: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How the candidate's topic stands among the customer's topics on one per-topic column (its block,
    :func:`_lines`): (its value minus the customer's best value, its rank with 1 = best; ties share the
    better rank)."""
    if len(lines) == 1:  # no names: every row is the NaN line's
        empty = np.full(len(at), np.nan)
        return empty, empty
    # Per (customer, as_of) pair and code first, then one gather per row: a pair has hundreds of
    # candidate rows but only a few codes.
    filled = lines[:-1].copy()
    filled[np.isnan(filled)] = 0.0
    gaps = np.empty_like(lines)
    ranks = np.empty_like(lines)
    np.subtract(filled, filled.max(axis=0), out=gaps[:-1])
    (filled[None, :, :] > filled[:, None, :]).sum(axis=1, out=ranks[:-1])  # [i, p]: names above name i in pair p
    ranks[:-1] += 1.0
    gaps[-1] = ranks[-1] = np.nan
    return gaps.ravel()[at], ranks.ravel()[at]


def offer_impression_columns(windows: tuple[int, ...]) -> tuple[str, ...]:
    """The per-offer columns, one per window: impressions of the candidate's offer on any channel."""
    return tuple(f"msg_offer_impressions_{w}d" for w in windows)


def _offer_impressions(ctx: FamilyContext, cand: Candidates, has: np.ndarray, unasked: np.ndarray) -> Columns:
    """Impressions of the candidate's offer (its message on every channel) in each window; no columns when
    the catalog shares no offer (each message its own: ``msg_seen_count`` already says it)."""
    if cand.offer is None:
        return {}
    names = offer_impression_columns(ctx.settings.windows_days)
    return {name: (np.where(has, ctx.history.count(("impression",), ctx.requests, window_days=w, by="offer", sub=cand.offer), np.nan)
                   if ctx.wants(name) else unasked)
            for name, w in zip(names, ctx.settings.windows_days)}


def candidate_features(ctx: FamilyContext, cand: Candidates, customer: Columns, pair: np.ndarray) -> Columns:
    """``ctx.requests`` are the request rows; ``customer`` holds customer-level columns per (customer,
    as_of) pair and ``pair`` maps each row to its pair."""
    h, r = ctx.history, ctx.requests
    topics, channels = ctx.vocab.topics.values, ctx.vocab.channels.values
    long = ctx.long_window
    has = cand.message >= 0
    stage = customer["journey_stage"][pair]
    pairs = len(customer["journey_stage"])
    topic_at, channel_at = _at(pair, cand.topic, len(topics), pairs), _at(pair, cand.channel, len(channels), pairs)
    stage_at = _at(pair, cand.stage, len(JOURNEY_STAGES), pairs)
    short = ctx.short_window
    # Each block is read twice: the candidate's own value and how it stands among the customer's.
    shares = _lines(customer, f"topic_{{}}_visit_share_{long}d", topics, pairs)
    affinities = _lines(customer, "topic_{}_affinity", topics, pairs)
    stage_rates = _lines(customer, f"stage_{{}}_click_rate_{short}d", JOURNEY_STAGES, pairs)
    # The choice among one channel's messages turns on relative interest: is this the customer's top topic?
    share_gap, share_rank = _standing(shares, topic_at)
    affinity_gap, affinity_rank = _standing(affinities, topic_at)
    stage_gap, stage_rank = _standing(stage_rates, stage_at)
    unasked = np.full(len(has), np.nan)
    with np.errstate(invalid="ignore"):
        stage_known = has & (cand.stage >= 0)
        out: Columns = {
            "msg_channel": np.where(has, cand.channel, np.nan),
            "msg_topic": np.where(has, cand.topic, np.nan),
            "msg_stage": np.where(stage_known, cand.stage, np.nan),
            "msg_value": np.where(has, cand.value, np.nan),
            "msg_days_since_valid_from": (r.as_of - cand.valid_from_ns) / NS_PER_DAY,
            # Per-row history queries, the family's costliest columns: computed only when asked for.
            "msg_seen_count": (np.where(has, h.count(("impression",), r, by="message", sub=cand.message), np.nan)
                               if ctx.wants("msg_seen_count") else unasked),
            "msg_days_since_shown": (h.days_since_last(("impression",), r, by="message", sub=cand.message)
                                     if ctx.wants("msg_days_since_shown") else unasked),
            "msg_topic_days_since_shown": (h.days_since_last(("impression",), r, by="topic", sub=cand.topic)
                                           if ctx.wants("msg_topic_days_since_shown") else unasked),
            **_offer_impressions(ctx, cand, has, unasked),
            "msg_topic_impressions_7d": _pick(customer, "topic_{}_impressions_7d", topics, pairs, topic_at),
            "msg_channel_impressions_1d": _pick(customer, "{}_impressions_1d", channels, pairs, channel_at),
            "msg_topic_affinity": affinities.ravel()[topic_at],
            f"msg_topic_visit_share_{long}d": shares.ravel()[topic_at],
            f"msg_channel_click_rate_{long}d": _pick(customer, f"{{}}_click_rate_{long}d", channels, pairs, channel_at),
            "msg_topic_share_gap": share_gap,
            "msg_topic_share_rank": share_rank,
            "msg_topic_affinity_gap": affinity_gap,
            "msg_topic_affinity_rank": affinity_rank,
            f"msg_topic_click_rate_{long}d": _pick(customer, f"topic_{{}}_click_rate_{long}d", topics, pairs, topic_at),
            f"msg_stage_click_rate_{short}d": stage_rates.ravel()[stage_at],
            "msg_stage_click_rate_gap": stage_gap,
            "msg_stage_click_rate_rank": stage_rank,
            "msg_stage_match": np.where(stage_known, (cand.stage == stage).astype(np.float64), np.nan),
            "msg_stage_gap": np.where(stage_known, cand.stage - stage, np.nan),
        }
    return out
