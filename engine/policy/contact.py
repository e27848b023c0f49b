"""Contact policy for one customer: consent, complaint suppression, per-message limits and volume caps.

Only events strictly before ``as_of`` count. A window of W covers ``as_of - W < ts < as_of``: an
impression exactly 24 h before ``as_of`` no longer uses today's slot, so a daily send at 09:00 can go again
at 09:00. A cap of N blocks when N impressions are already in the window (0 blocks the channel).

Compacted history (the feature state of a bundle) keeps one record per older group of impressions with its
count (``weight``) and its last time: lifetime counts stay exact and so does the last time a message was
shown; the windowed caps see raw events only, which is exact as long as their windows (1 and 7 days) are
shorter than the state's raw window.

Checks in this order; the first that fails is the reason (most lasting and most specific first):
``consent``, ``complaint_suppression``, ``lifetime_max``, ``cooldown``, ``offer_on_other_channel``,
``channel_daily_cap``, ``channel_weekly_cap``, ``global_daily_cap``, ``global_weekly_cap``.

``offer_on_other_channel``: one offer is often sent as a message per channel (``messages.offer_id``); a
message waits ``offer_spacing_hours`` after its offer was shown on another channel, so that a customer
does not get the same offer by email and app within a day. Coordination keeps one offer to one channel
among the messages decided together; this rule covers decisions made one channel at a time.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from engine.config import ContactSettings
from engine.features.log import EVENT_CODE, CatalogVocabularies, EventLog
from engine.policy.rules import Verdict
from engine.timeutil import NS_PER_DAY, to_ns

CONSENT = "consent"
COMPLAINT_SUPPRESSION = "complaint_suppression"
LIFETIME_MAX = "lifetime_max"
COOLDOWN = "cooldown"
OFFER_ON_OTHER_CHANNEL = "offer_on_other_channel"
CHANNEL_DAILY_CAP = "channel_daily_cap"
CHANNEL_WEEKLY_CAP = "channel_weekly_cap"
GLOBAL_DAILY_CAP = "global_daily_cap"
GLOBAL_WEEKLY_CAP = "global_weekly_cap"
REASONS = (CONSENT, COMPLAINT_SUPPRESSION, LIFETIME_MAX, COOLDOWN, OFFER_ON_OTHER_CHANNEL,
           CHANNEL_DAILY_CAP, CHANNEL_WEEKLY_CAP, GLOBAL_DAILY_CAP, GLOBAL_WEEKLY_CAP)

_NEVER = np.iinfo(np.int64).min
_NS_PER_HOUR = NS_PER_DAY // 24


def _ns(values) -> np.ndarray:
    return np.asarray(values, dtype=np.int64).reshape(-1)


def _text(values) -> np.ndarray:
    array = np.asarray(values)
    if array.dtype.kind == "U":  # text already (the online catalog's arrays): converting costs per decision
        return array.reshape(-1)
    return np.asarray(values, dtype=object).astype(str).reshape(-1)


@dataclass(frozen=True, eq=False)
class ContactHistory:
    """The contact history of ONE customer as plain arrays; times are UTC int64 ns.

    Events at or after the ``as_of`` of a decision may be present: the checks ignore them.
    ``impression_weight`` is how many impressions each entry stands for (1 unless compacted; default 1);
    ``impression_offer`` the offer of each impression's message (default: the message, its own offer).
    """

    impression_ts: np.ndarray
    impression_channel: np.ndarray
    impression_message: np.ndarray
    impression_topic: np.ndarray
    complaint_ts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    unsubscribe_ts: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    unsubscribe_channel: np.ndarray = field(default_factory=lambda: np.zeros(0, object))
    impression_weight: np.ndarray | None = None
    impression_offer: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("impression_ts", "complaint_ts", "unsubscribe_ts"):
            object.__setattr__(self, name, _ns(getattr(self, name)))
        weight = np.ones(len(self.impression_ts), np.int64) if self.impression_weight is None else _ns(self.impression_weight)
        object.__setattr__(self, "impression_weight", weight)
        if self.impression_offer is None:
            object.__setattr__(self, "impression_offer", self.impression_message)
        for name in ("impression_channel", "impression_message", "impression_topic", "unsubscribe_channel", "impression_offer"):
            object.__setattr__(self, name, _text(getattr(self, name)))
        m = len(self.impression_ts)
        if not len(self.impression_channel) == len(self.impression_message) == len(self.impression_topic) == m:
            raise ValueError("impression_ts, impression_channel, impression_message and impression_topic must have one length")
        if len(weight) != m:
            raise ValueError("impression_weight must have one entry per impression")
        if len(self.impression_offer) != m:
            raise ValueError("impression_offer must have one entry per impression")
        if len(self.unsubscribe_ts) != len(self.unsubscribe_channel):
            raise ValueError("unsubscribe_ts and unsubscribe_channel must have one length")

    @classmethod
    def empty(cls) -> ContactHistory:
        return cls(np.zeros(0, np.int64), np.zeros(0, object), np.zeros(0, object), np.zeros(0, object))

    @classmethod
    def from_events(cls, events: pd.DataFrame, topic_of: Mapping[str, str] | None = None,
                    offer_of: Mapping[str, str] | None = None) -> ContactHistory:
        """From one customer's canonical events (``ts``, ``event_type``, ``channel``, ``message_id``,
        ``topic``); an impression without a topic takes its message's topic from ``topic_of``; its offer is
        its message's in ``offer_of`` (a message not there is its own offer)."""
        kind = events["event_type"].astype(str).to_numpy()
        shown = events.loc[kind == "impression"]
        topic = shown["topic"].astype(object)
        if topic_of is not None:
            topic = topic.where(topic.notna(), shown["message_id"].astype(object).map(dict(topic_of)))
        unsubscribed = events.loc[kind == "unsubscribe"]
        message = shown["message_id"].astype(object)
        offer = message if offer_of is None else message.map(dict(offer_of)).where(lambda o: o.notna(), message)
        return cls(
            impression_ts=to_ns(shown["ts"]), impression_channel=shown["channel"].to_numpy(dtype=object),
            impression_message=message.to_numpy(dtype=object), impression_topic=topic.to_numpy(dtype=object),
            complaint_ts=to_ns(events.loc[kind == "complaint", "ts"]),
            unsubscribe_ts=to_ns(unsubscribed["ts"]), unsubscribe_channel=unsubscribed["channel"].to_numpy(dtype=object),
            impression_offer=offer.to_numpy(dtype=object),
        )

    @classmethod
    def from_log(cls, log: EventLog, vocab: CatalogVocabularies, message_topic: np.ndarray, *,
                 impressions: bool = True, message_offer: np.ndarray | None = None) -> ContactHistory:
        """From ONE customer's encoded log (e.g. a bundle's compacted state plus live events), keeping
        compacted weights. ``message_topic`` is the topic code of each message code: an impression without
        a topic of its own takes its message's, as in :meth:`from_events`. ``message_offer``: the offer code
        of each message code (:meth:`FeatureSpec.offer_codes`, a message code); an impression's offer is
        then the id of its offer's message (None: its own message). ``impressions=False`` leaves them out:
        right when :func:`reads_impressions` is false for the settings it is judged by."""
        kind = log.event_type
        unsubscribed = kind == EVENT_CODE["unsubscribe"]
        if not impressions:  # consent and complaints only: the common case, on every decision
            no_text, no_ns = np.zeros(0, dtype=str), np.zeros(0, np.int64)
            return cls(no_ns, no_text, no_text, no_text, complaint_ts=log.ts[kind == EVENT_CODE["complaint"]],
                       unsubscribe_ts=log.ts[unsubscribed], impression_weight=no_ns,
                       unsubscribe_channel=vocab.channels.decode(log.channel[unsubscribed]))
        shown = kind == EVENT_CODE["impression"]
        message = log.message[shown].astype(np.int64)
        topic = log.topic[shown].astype(np.int64)
        if len(message_topic):
            topic = np.where((topic < 0) & (message >= 0), np.asarray(message_topic)[np.maximum(message, 0)], topic)
        offer = None
        if message_offer is not None and len(message_offer):
            offer = vocab.messages.decode(np.where(message >= 0, np.asarray(message_offer)[np.maximum(message, 0)], -1))
        return cls(
            impression_ts=log.ts[shown], impression_channel=vocab.channels.decode(log.channel[shown]),
            impression_message=vocab.messages.decode(message), impression_topic=vocab.topics.decode(topic),
            impression_weight=log.weight[shown],
            complaint_ts=log.ts[kind == EVENT_CODE["complaint"]],
            unsubscribe_ts=log.ts[unsubscribed], unsubscribe_channel=vocab.channels.decode(log.channel[unsubscribed]),
            impression_offer=offer,
        )


def channel_caps(channel: np.ndarray, settings: ContactSettings) -> tuple[np.ndarray, np.ndarray]:
    """(daily, weekly) cap of each candidate's channel as float arrays; ``inf`` where there is no cap."""
    channel = _text(channel)
    daily = np.full(len(channel), _or_inf(settings.channel_daily_cap))
    weekly = np.full(len(channel), _or_inf(settings.channel_weekly_cap))
    for name, own in settings.channels.items():
        if own.daily_cap is not None:
            daily[channel == name] = own.daily_cap
        if own.weekly_cap is not None:
            weekly[channel == name] = own.weekly_cap
    return daily, weekly


def contact_verdict(channel: np.ndarray, message_id: np.ndarray, topic: np.ndarray, history: ContactHistory, as_of_ns: int,
                    settings: ContactSettings, offer: np.ndarray | None = None) -> Verdict:
    """Verdict of the contact policy for n candidates (``channel``, ``message_id``, ``topic``, and
    ``offer``, keyed as the history's ``impression_offer``) of one customer deciding at ``as_of_ns``;
    reasons in the module's order. A check that is not configured is not computed: it passes every
    candidate (this runs on every decision). Without ``offer`` each message is its own offer, shown on
    its own channel only: the offer spacing passes every candidate."""
    channel, message_id, topic = _text(channel), _text(message_id), _text(topic)
    as_of = int(as_of_ns)
    h = history
    n = len(channel)
    weight = h.impression_weight
    before = h.impression_ts < as_of

    unsubscribed = h.unsubscribe_channel[h.unsubscribe_ts < as_of]
    checks = []  # (reason, passes) in the module's order; a check that cannot fail is left out
    if len(unsubscribed):
        checks.append((CONSENT, ~np.isin(channel, unsubscribed)))
    suppress_ns = round(settings.complaint_suppression_days * NS_PER_DAY)
    complained = suppress_ns > 0 and bool(np.any((h.complaint_ts < as_of) & (h.complaint_ts > as_of - suppress_ns)))
    if complained:
        promotional = np.ones(n, bool) if settings.promotional_topics is None else np.isin(topic, settings.promotional_topics)
        checks.append((COMPLAINT_SUPPRESSION, ~promotional))
    if settings.lifetime_max is not None or settings.cooldown_days is not None:
        same_message = (message_id[:, None] == h.impression_message[None, :]) & before[None, :]
        if settings.lifetime_max is not None:
            checks.append((LIFETIME_MAX, same_message @ weight < settings.lifetime_max))
        if settings.cooldown_days is not None:
            last_shown = np.where(same_message, h.impression_ts[None, :], _NEVER).max(axis=1, initial=_NEVER)
            checks.append((COOLDOWN, last_shown <= as_of - round(settings.cooldown_days * NS_PER_DAY)))
    spacing_ns = min(round(settings.offer_spacing_hours * _NS_PER_HOUR), 2**62)
    if spacing_ns > 0 and offer is not None:
        recent = before & (h.impression_ts > as_of - spacing_ns)
        elsewhere = ((_text(offer)[:, None] == h.impression_offer[None, :]) & (channel[:, None] != h.impression_channel[None, :])
                     & recent[None, :])
        checks.append((OFFER_ON_OTHER_CHANNEL, ~elsewhere.any(axis=1)))
    day = before & (h.impression_ts > as_of - NS_PER_DAY)
    week = before & (h.impression_ts > as_of - 7 * NS_PER_DAY)
    if _has_channel_caps(settings):
        daily_cap, weekly_cap = channel_caps(channel, settings)
        same_channel = channel[:, None] == h.impression_channel[None, :]
        checks += [(CHANNEL_DAILY_CAP, (same_channel & day) @ weight < daily_cap),
                   (CHANNEL_WEEKLY_CAP, (same_channel & week) @ weight < weekly_cap)]
    if settings.global_daily_cap is not None:
        checks.append((GLOBAL_DAILY_CAP, np.full(n, day @ weight < settings.global_daily_cap)))
    if settings.global_weekly_cap is not None:
        checks.append((GLOBAL_WEEKLY_CAP, np.full(n, week @ weight < settings.global_weekly_cap)))
    return Verdict.first_failure(n, checks)


def passes_everyone(history: ContactHistory, as_of_ns: int, settings: ContactSettings) -> bool:
    """True when no check can fail for any candidate at ``as_of_ns``: no limit counts impressions, no
    unsubscribe before then and no complaint within the suppression window. Then
    :func:`contact_verdict` allows every candidate, and a caller may skip building its arrays."""
    if reads_impressions(settings):
        return False
    as_of = int(as_of_ns)
    if bool(np.any(history.unsubscribe_ts < as_of)):
        return False
    suppress_ns = round(settings.complaint_suppression_days * NS_PER_DAY)
    return not (suppress_ns > 0 and bool(np.any((history.complaint_ts < as_of) & (history.complaint_ts > as_of - suppress_ns))))


@dataclass(frozen=True, eq=False)
class BatchStanding:
    """Consent and complaints of each customer of a batch log at that customer's own ``as_of``: what
    :func:`passes_everyone` and the consent check read, for all the customers of a batch in a few array
    operations instead of a :class:`ContactHistory` each."""

    unsubscribed: np.ndarray  # (customers, channels + 1) bool: unsubscribed from that channel code before as_of (last: none)
    any_unsubscribe: np.ndarray  # (customers,) bool: an unsubscribe from any channel before as_of
    complained: np.ndarray  # (customers,) bool: a complaint within the suppression window before as_of

    def passes_everyone(self, customer: int, settings: ContactSettings) -> bool:
        """:func:`passes_everyone` of that customer's history at its ``as_of``."""
        return not (reads_impressions(settings) or self.any_unsubscribe[customer] or self.complained[customer])


def batch_standing(log: EventLog, as_of_ns: np.ndarray, channels: int, settings: ContactSettings) -> BatchStanding:
    """:class:`BatchStanding` of every customer code of ``log`` (``as_of_ns[code]`` each; ``channels``:
    the size of the channel vocabulary). Only events strictly before a customer's ``as_of`` count."""
    customers = len(as_of_ns)
    as_of = np.asarray(as_of_ns, dtype=np.int64)[log.customer]
    before = log.ts < as_of
    unsubscribe = before & (log.event_type == EVENT_CODE["unsubscribe"])
    unsubscribed = np.zeros((customers, channels + 1), dtype=bool)
    unsubscribed[log.customer[unsubscribe], log.channel[unsubscribe]] = True  # channel -1 lands in the last column
    any_unsubscribe = np.zeros(customers, dtype=bool)
    any_unsubscribe[log.customer[unsubscribe]] = True
    complained = np.zeros(customers, dtype=bool)
    # Capped at 2**62 ns (146,000 years, longer than any history) so that as_of minus it stays in int64.
    suppress_ns = min(round(settings.complaint_suppression_days * NS_PER_DAY), 2**62)
    if suppress_ns > 0:
        recent = before & (log.event_type == EVENT_CODE["complaint"]) & (log.ts > as_of - suppress_ns)
        complained[log.customer[recent]] = True
    return BatchStanding(unsubscribed, any_unsubscribe, complained)


def reads_impressions(settings: ContactSettings) -> bool:
    """Whether any configured check counts impressions (caps, cooldown, lifetime maximum, offer spacing);
    consent and complaint suppression read unsubscribes and complaints only."""
    return (settings.lifetime_max is not None or settings.cooldown_days is not None or _has_channel_caps(settings)
            or settings.global_daily_cap is not None or settings.global_weekly_cap is not None or settings.offer_spacing_hours > 0)


def for_catalog(settings: ContactSettings, *, offers_shared: bool) -> ContactSettings:
    """The settings as they apply to a catalog: without an offer that has messages on two channels the
    offer spacing can hold back no message (each is its own offer, on its own channel), so it is off and
    decisions need not read impressions for it (:func:`reads_impressions`)."""
    if offers_shared or settings.offer_spacing_hours == 0:
        return settings
    return settings.model_copy(update={"offer_spacing_hours": 0.0})


def _has_channel_caps(settings: ContactSettings) -> bool:
    return (settings.channel_daily_cap is not None or settings.channel_weekly_cap is not None
            or any(own.daily_cap is not None or own.weekly_cap is not None for own in settings.channels.values()))


def remaining_sends(channel: str | None, history: ContactHistory, as_of_ns: int, settings: ContactSettings) -> float:
    """How many more messages the volume caps let this customer receive at ``as_of_ns``: on ``channel``
    (its daily and weekly caps and the global ones), or across channels when ``channel`` is None (the global
    caps only); ``inf`` without caps. :func:`contact_verdict` judges each message as if it were sent alone,
    so a slate of several messages must also stay within this number."""
    if settings.global_daily_cap is None and settings.global_weekly_cap is None and (
            channel is None or not _has_channel_caps(settings)):
        return float("inf")  # no cap applies: nothing to count
    as_of = int(as_of_ns)
    h = history
    before = h.impression_ts < as_of
    weights = h.impression_weight
    day = before & (h.impression_ts > as_of - NS_PER_DAY)
    week = before & (h.impression_ts > as_of - 7 * NS_PER_DAY)
    left = [_or_inf(settings.global_daily_cap) - weights[day].sum(), _or_inf(settings.global_weekly_cap) - weights[week].sum()]
    if channel is not None:
        daily, weekly = channel_caps(np.array([channel]), settings)
        own = h.impression_channel == str(channel)
        left += [daily[0] - weights[day & own].sum(), weekly[0] - weights[week & own].sum()]
    return max(0.0, float(min(left)))


def _or_inf(cap: int | None) -> float:
    return np.inf if cap is None else float(cap)
