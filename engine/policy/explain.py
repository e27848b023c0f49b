"""Why a message was ranked where it was: the strongest feature contributions in plain English.

Input is LightGBM's ``pred_contrib`` output (SHAP values): one row per scored candidate, one column per
feature plus the bias last. The reasons are the ``n`` features with the largest absolute contribution;
exact zeros are left out (a feature that did not move the score is no reason). Labels come from the
feature naming scheme of docs/features.md, with a readable fallback for any name it does not know.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

_FIXED = {
    "journey_stage": "journey stage",
    "purchase_count_lifetime": "purchases ever",
    "last_survey_score": "last survey score",
    "days_since_last_survey": "days since the last survey",
    "days_since_last_complaint": "days since the last complaint",
    "is_detractor": "is a detractor (survey score 6 or less)",
    "is_promoter": "is a promoter (survey score 9 or more)",
    "msg_channel": "the message's channel",
    "msg_topic": "the message's topic",
    "msg_stage": "the message's journey stage",
    "msg_value": "the message's value",
    "msg_days_since_valid_from": "days since the message went live",
    "msg_seen_count": "times this message was shown",
    "msg_days_since_shown": "days since this message was last shown",
    "msg_topic_days_since_shown": "days since a message on this topic was last shown",
    "msg_topic_share_gap": "share of visits on the message's topic vs the top topic",
    "msg_topic_share_rank": "rank of the message's topic by visits",
    "msg_topic_affinity_gap": "interest in the message's topic vs the top topic",
    "msg_topic_affinity_rank": "rank of the message's topic by interest",
    "msg_stage_click_rate_gap": "click rate on the message's stage vs the best stage",
    "msg_stage_click_rate_rank": "rank of the message's stage by click rate",
    "msg_stage_match": "message fits the customer's journey stage",
    "msg_stage_gap": "message stage ahead of the customer's",
}
_EVENT_PLURAL = {"visit": "visits", "click": "clicks", "purchase": "purchases", "impression": "messages shown",
                 "conversion": "conversions", "support": "support contacts", "complaint": "complaints"}
_EVENT_SINGULAR = {"impression": "message shown"}
W = r"_(?P<w>\d+)d$"
# Stands for "the candidate message's own topic / stage / channel" in the msg_<kind>_... cross features.
_OWN = "\0"

# (pattern, template): {s} is the channel, topic or stage named in the feature; {w} the window phrase.
_PATTERNS = [
    (rf"^msg_offer_impressions{W}", "times this offer was shown on any channel in the {w}"),
    (r"^days_since_last_(?P<e>\w+)$", "days since the last {e1}"),
    (rf"^(?P<e>\w+?)_count{W}", "{en} in the {w}"),
    (rf"^purchase_amount_sum{W}", "purchase amount in the {w}"),
    (rf"^purchase_amount_avg{W}", "average purchase amount over the {w}"),
    (rf"^impressions{W}", "messages shown in the {w}"),
    (rf"^topic_(?P<s>.+)_impressions{W}", "messages about {s} shown in the {w}"),
    (rf"^topic_(?P<s>.+)_(?P<e>visit|click|purchase)s{W}", "{en} on {s} in the {w}"),
    (rf"^topic_(?P<s>.+)_click_rate{W}", "click rate on messages about {s} over the {w}"),
    (rf"^topic_(?P<s>.+)_visit_share{W}", "share of visits on {s} over the {w}"),
    (r"^topic_(?P<s>.+)_affinity$", "recent interest in {s}"),
    (rf"^stage_(?P<s>.+)_impressions{W}", "{s} messages shown in the {w}"),
    (rf"^stage_(?P<s>.+)_click_rate{W}", "click rate on {s} messages over the {w}"),
    (rf"^(?P<s>.+)_impressions{W}", "messages shown on {s} in the {w}"),
    (rf"^(?P<s>.+)_(?P<e>open|click|conversion)_rate{W}", "{e} rate on {s} over the {w}"),
    (r"^profile_(?P<x>.+)$", "customer {x}"),
    (r"^msg_attr_(?P<x>.+)$", "message {x}"),
]


def _window(days: str) -> str:
    return "last day" if days == "1" else f"last {days} days"


def _subject(feature: str, value: str) -> str:
    if feature.startswith("topic_"):
        return "the message's topic" if value == _OWN else value
    if feature.startswith("stage_"):
        return "same-stage" if value == _OWN else f"{value}-stage"
    return "the message's channel" if value == _OWN else value


def feature_label(name: str) -> str:
    """A short English label of a feature name, e.g. ``click_count_30d`` -> "clicks in the last 30 days"."""
    if name in _FIXED:
        return _FIXED[name]
    # msg_topic_X, msg_stage_X, msg_channel_X are the customer's topic_<t>_X, stage_<s>_X, <c>_X columns
    # read at the candidate's own topic, stage or channel.
    for kind, own in (("topic", f"topic_{_OWN}_"), ("stage", f"stage_{_OWN}_"), ("channel", f"{_OWN}_")):
        if name.startswith(f"msg_{kind}_"):
            label = _translate(own + name[len(f"msg_{kind}_"):])
            if label is not None:
                return label
    return _translate(name) or _fallback(name)


def _translate(name: str) -> str | None:
    for pattern, template in _PATTERNS:
        found = re.match(pattern, name, flags=re.DOTALL)
        if found is None:
            continue
        parts = found.groupdict()
        e = parts.get("e") or ""
        return template.format(
            s=_subject(name, parts.get("s") or ""), w=_window(parts.get("w") or ""), e=e,
            e1=_EVENT_SINGULAR.get(e, e), en=_EVENT_PLURAL.get(e, e + "s"),
            x=(parts.get("x") or "").replace("_", " "),
        )
    return None


def _fallback(name: str) -> str:
    found = re.match(rf"^(?P<base>.+){W}", name)
    if found:
        return f"{found['base'].replace('_', ' ')} in the {_window(found['w'])}"
    return name.replace("_", " ")


@dataclass(frozen=True)
class Contribution:
    feature: str
    label: str
    value: float  # in the model's raw score units (log-odds for the binary objective); > 0 raised it


def top_contributions(contrib: np.ndarray, feature_names: Sequence[str], n: int = 3,
                      labels: Mapping[str, str] | None = None) -> list[list[Contribution]]:
    """Per row, up to ``n`` contributions by absolute value, largest first (ties: feature order).

    ``contrib`` is (rows, len(feature_names) + 1), bias last; ``labels`` overrides :func:`feature_label`.
    """
    contrib = np.asarray(contrib, dtype=np.float64)
    if contrib.ndim != 2 or contrib.shape[1] != len(feature_names) + 1:
        raise ValueError(f"pred_contrib must be (rows, {len(feature_names) + 1}): one column per feature and the "
                         f"bias last; got shape {contrib.shape}")
    values = contrib[:, :-1]
    order = np.argsort(-np.abs(values), axis=1, kind="stable")[:, :max(n, 0)]
    names = {i: name for i, name in enumerate(feature_names)}
    label_of = {name: (labels or {}).get(name) or feature_label(name) for name in feature_names}
    return [
        [Contribution(names[j], label_of[names[j]], float(values[i, j])) for j in row if values[i, j] != 0.0]
        for i, row in enumerate(order)
    ]
