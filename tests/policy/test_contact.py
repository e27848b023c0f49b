"""Contact policy on one customer's hand-made history; times are hours before AS_OF unless said otherwise."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from engine.config import ContactSettings, load_settings
from engine.errors import ConfigError
from engine.policy.contact import (REASONS, ContactHistory, contact_verdict, for_catalog, passes_everyone, reads_impressions,
                                   remaining_sends)
from engine.timeutil import NS_PER_DAY
from tests.builders import events_frame

AS_OF = pd.Timestamp("2026-03-10T12:00:00Z").value
HOUR = NS_PER_DAY // 24


def _history(shown: list[tuple[float, str, str, str]], complaints: list[float] = (), unsubscribes: list[tuple[float, str]] = (),
             offer_of: dict[str, str] | None = None):
    """``shown``: (hours before AS_OF, channel, message, topic); negative hours are after AS_OF; ``offer_of``:
    the offer of a message (absent: its own)."""
    return ContactHistory(
        impression_ts=np.array([AS_OF - round(h * HOUR) for h, *_ in shown], dtype=np.int64),
        impression_channel=np.array([c for _, c, _, _ in shown], dtype=object),
        impression_message=np.array([m for _, _, m, _ in shown], dtype=object),
        impression_topic=np.array([t for *_, t in shown], dtype=object),
        complaint_ts=np.array([AS_OF - round(h * HOUR) for h in complaints], dtype=np.int64),
        unsubscribe_ts=np.array([AS_OF - round(h * HOUR) for h, _ in unsubscribes], dtype=np.int64),
        unsubscribe_channel=np.array([c for _, c in unsubscribes], dtype=object),
        impression_offer=None if offer_of is None else np.array([offer_of.get(m, m) for _, _, m, _ in shown], dtype=object),
    )


def _reasons(history: ContactHistory, candidates: list[tuple[str, str, str]], offer_of: dict[str, str] | None = None,
             **settings) -> list[str]:
    channel, message, topic = (np.array(x, dtype=object) for x in zip(*candidates))
    offer = None if offer_of is None else np.array([offer_of.get(m, m) for m in message], dtype=object)
    return contact_verdict(channel, message, topic, history, AS_OF, ContactSettings(**settings), offer).reason.tolist()


EMAIL, SMS = ("email", "new", "t"), ("sms", "new", "t")


def test_channel_daily_cap_counts_the_channel_only():
    # 3 impressions on email in the last 24 h, daily cap 3 -> email blocked; sms has none -> allowed.
    h = _history([(1, "email", "a", "t"), (5, "email", "b", "t"), (23, "email", "c", "t")])
    assert _reasons(h, [EMAIL, SMS], channel_daily_cap=3) == ["channel_daily_cap", ""]
    assert _reasons(h, [EMAIL], channel_daily_cap=4) == [""]


@pytest.mark.parametrize(
    ("hours", "blocked"),
    [
        ([24, 1, 2], False),  # exactly 24 h before as_of is outside the window: 2 < 3
        ([24 - 1e-9, 1, 2], True),  # 1 ns later it is inside: 3
        ([0, 1, 2], False),  # at as_of is not before as_of: 2
        ([-5, 1, 2], False),  # after as_of never counts
    ],
)
def test_daily_window_is_open_at_both_ends(hours, blocked):
    h = _history([(x, "email", f"m{i}", "t") for i, x in enumerate(hours)])
    assert _reasons(h, [EMAIL], channel_daily_cap=3) == (["channel_daily_cap"] if blocked else [""])


def test_weekly_cap_and_its_edge():
    # Email impressions 2, 3 and 6.9 days ago, one exactly 7 days ago (outside): 3 in the week, cap 3.
    h = _history([(24 * d, "email", f"m{d}", "t") for d in (2, 3, 6.9, 7)])
    assert _reasons(h, [EMAIL], channel_weekly_cap=3) == ["channel_weekly_cap"]
    assert _reasons(h, [EMAIL], channel_weekly_cap=4) == [""]
    assert _reasons(h, [EMAIL], channel_daily_cap=1, channel_weekly_cap=3) == ["channel_weekly_cap"]  # none today


def test_per_channel_caps_override_the_default():
    # One impression on each channel today; default daily cap 5, sms 1, a cap of 0 blocks push outright.
    h = _history([(1, "email", "a", "t"), (2, "sms", "b", "t")])
    settings = {"channel_daily_cap": 5, "channels": {"sms": {"daily_cap": 1}, "push": {"daily_cap": 0}}}
    assert _reasons(h, [EMAIL, SMS, ("push", "p", "t")], **settings) == ["", "channel_daily_cap", "channel_daily_cap"]


def test_global_caps_count_every_channel():
    # Today: 1 email + 1 sms = 2 -> global daily cap 2 blocks push too; this week 2 + 2 older = 4.
    h = _history([(1, "email", "a", "t"), (2, "sms", "b", "t"), (48, "email", "c", "t"), (100, "sms", "d", "t")])
    push = ("push", "p", "t")
    assert _reasons(h, [push], global_daily_cap=2) == ["global_daily_cap"]
    assert _reasons(h, [push], global_daily_cap=3, global_weekly_cap=4) == ["global_weekly_cap"]
    assert _reasons(h, [push], global_daily_cap=3, global_weekly_cap=5) == [""]


def test_cooldown_since_this_message_was_last_shown():
    # m1 shown 3 days ago (cooldown 7 -> blocked); m2 exactly 7 days ago (free again); m3 only at as_of.
    h = _history([(72, "email", "m1", "t"), (24 * 7, "email", "m2", "t"), (0, "email", "m3", "t"), (24 * 30, "email", "m1", "t")])
    candidates = [("email", "m1", "t"), ("email", "m2", "t"), ("email", "m3", "t")]
    assert _reasons(h, candidates, cooldown_days=7) == ["cooldown", "", ""]


def test_lifetime_max_counts_every_past_impression_of_the_message():
    # m1 shown 3 times (once 400 days ago), m2 twice, m2 again after as_of (not counted): max 3.
    h = _history([(1, "email", "m1", "t"), (50, "sms", "m1", "t"), (9600, "email", "m1", "t"),
                  (3, "email", "m2", "t"), (4, "email", "m2", "t"), (-1, "email", "m2", "t")])
    assert _reasons(h, [("email", "m1", "t"), ("email", "m2", "t")], lifetime_max=3) == ["lifetime_max", ""]


def test_complaint_suppresses_promotional_topics_for_the_configured_days():
    deals, news = ("email", "d", "deals"), ("email", "n", "news")
    recent = _history([], complaints=[29 * 24])  # 29 days ago, suppression 30 days (default)
    assert _reasons(recent, [deals, news]) == ["complaint_suppression"] * 2  # absent list: every topic
    assert _reasons(recent, [deals, news], promotional_topics=["deals"]) == ["complaint_suppression", ""]
    assert _reasons(recent, [deals, news], promotional_topics=[]) == ["", ""]  # empty list: none
    assert _reasons(recent, [deals], complaint_suppression_days=0) == [""]  # off
    assert _reasons(_history([], complaints=[30 * 24]), [deals]) == [""]  # exactly 30 days ago: over
    assert _reasons(_history([], complaints=[0, -5]), [deals]) == [""]  # at or after as_of: not yet


def test_an_offer_shown_on_another_channel_waits_offer_spacing_hours():
    # Offer o is e1 by email, a1 by app, w1 by web; a1 was shown on app 5 h ago. e1 and w1 wait (default
    # 24 h); a1 itself is on the channel that showed it (that is cooldown's business); x1 is another offer.
    offers = {"e1": "o", "a1": "o", "w1": "o"}
    e1, a1, w1, x1 = ("email", "e1", "t"), ("app", "a1", "t"), ("web", "w1", "t"), ("email", "x1", "t")
    recent = _history([(5, "app", "a1", "t")], offer_of=offers)
    assert _reasons(recent, [e1, a1, w1, x1], offers) == ["offer_on_other_channel", "", "offer_on_other_channel", ""]
    assert _reasons(recent, [e1, w1], offers, offer_spacing_hours=6) == ["offer_on_other_channel"] * 2
    assert _reasons(recent, [e1, w1], offers, offer_spacing_hours=5) == ["", ""]  # exactly 5 h ago: free again
    assert _reasons(recent, [e1, w1], offers, offer_spacing_hours=0) == ["", ""]  # off
    # Exactly 24 h ago has left the window; at or after as_of does not count yet.
    assert _reasons(_history([(24, "app", "a1", "t"), (0, "web", "w1", "t"), (-1, "web", "w1", "t")], offer_of=offers), [e1], offers) == [""]
    # Without offers (each message its own) nothing is held back; a compacted record counts by its last time.
    assert _reasons(recent, [e1, w1]) == ["", ""]
    compacted = ContactHistory(np.array([AS_OF - 3 * HOUR]), np.array(["app"]), np.array(["a1"]), np.array(["t"]),
                               impression_weight=np.array([4]), impression_offer=np.array(["o"]))
    assert _reasons(compacted, [e1], offers) == ["offer_on_other_channel"]
    counts = contact_verdict(np.array(["email", "web"]), np.array(["e1", "w1"]), np.array(["t", "t"]), recent, AS_OF,
                             ContactSettings(), np.array(["o", "o"])).counts()
    assert counts == {"offer_on_other_channel": 2}


def test_the_offers_of_a_history_from_events_and_from_an_encoded_log():
    from engine.features.log import CatalogVocabularies, EventLog
    from tests.builders import messages_frame

    messages = messages_frame([{"message_id": "e1", "channel": "email", "topic": "t"}, {"message_id": "a1", "channel": "app", "topic": "t"},
                               {"message_id": "x1", "channel": "app", "topic": "t"}])
    events = events_frame([
        {"customer_id": "c1", "ts": "2026-03-10T07:00:00Z", "event_type": "impression", "channel": "app", "message_id": "a1"},
        {"customer_id": "c1", "ts": "2026-03-10T08:00:00Z", "event_type": "impression", "channel": "app", "message_id": "x1"},
    ])
    reference = ContactHistory.from_events(events, offer_of={"e1": "o", "a1": "o"})
    assert reference.impression_offer.tolist() == ["o", "x1"]
    vocab = CatalogVocabularies.from_messages(messages)  # messages a1, e1, x1: a1 and e1 are offer 0 (a1's code)
    log = EventLog.from_events(events, vocab)
    encoded = ContactHistory.from_log(log, vocab, np.zeros(0, np.int64), message_offer=np.array([0, 0, 2]))
    assert encoded.impression_offer.tolist() == ["a1", "x1"]
    assert ContactHistory.from_log(log, vocab, np.zeros(0, np.int64)).impression_offer.tolist() == ["a1", "x1"]
    assert _reasons(reference, [("email", "e1", "t")], {"e1": "o"}) == ["offer_on_other_channel"]
    assert _reasons(encoded, [("email", "e1", "t")], {"e1": "a1"}) == ["offer_on_other_channel"]


def test_consent_blocks_the_unsubscribed_channel_strictly_after():
    h = _history([], unsubscribes=[(24, "sms"), (0, "email")])
    assert _reasons(h, [SMS, EMAIL]) == ["consent", ""]


def test_the_first_failing_rule_in_the_documented_order_is_the_reason():
    # m1 on sms: unsubscribed, complained, shown 2 times today, its offer (with m8 by email) shown by email
    # -> every rule fails; dropping the earlier rules one by one reveals the next in the order of REASONS.
    shown = [(1, "sms", "m1", "t"), (2, "sms", "m1", "t"), (30, "email", "m8", "t")]
    offers = {"m1": "o", "m8": "o"}
    caps = {"channel_daily_cap": 1, "channel_weekly_cap": 1, "global_daily_cap": 1, "global_weekly_cap": 1}
    limits = {"lifetime_max": 2, "cooldown_days": 1, "offer_spacing_hours": 48, **caps}
    seen = [
        _reasons(_history(shown, [5], [(3, "sms")], offers), [("sms", "m1", "t")], offers, **limits)[0],
        _reasons(_history(shown, [5], offer_of=offers), [("sms", "m1", "t")], offers, **limits)[0],
        _reasons(_history(shown, offer_of=offers), [("sms", "m1", "t")], offers, **limits)[0],
        _reasons(_history(shown, offer_of=offers), [("sms", "m1", "t")], offers, **{**limits, "lifetime_max": None})[0],
        _reasons(_history(shown, offer_of=offers), [("sms", "m1", "t")], offers, **{**limits, "lifetime_max": None, "cooldown_days": None})[0],
        _reasons(_history(shown), [("sms", "m9", "t")], **limits)[0],
        _reasons(_history(shown), [("sms", "m9", "t")], **{**caps, "channel_daily_cap": None})[0],
        _reasons(_history(shown), [("push", "m9", "t")], **{**caps, "channel_daily_cap": None})[0],
        _reasons(_history(shown), [("push", "m9", "t")], **{**caps, "global_daily_cap": None})[0],
    ]
    assert seen == list(REASONS)


def _slow_reasons(h: ContactHistory, candidates, s: ContactSettings, offer_of: dict[str, str]) -> list[str]:
    """The obvious loop over candidates and impressions, to check the vectorised version against."""
    out = []
    for channel, message, topic in candidates:
        past = [(t, c, m) for t, c, m in zip(h.impression_ts, h.impression_channel, h.impression_message) if t < AS_OF]
        day = [c for t, c, _ in past if t > AS_OF - NS_PER_DAY]
        week = [c for t, c, _ in past if t > AS_OF - 7 * NS_PER_DAY]
        mine = [t for t, _, m in past if m == message]
        offer = offer_of.get(message, message)
        elsewhere = [t for t, c, m in past if offer_of.get(m, m) == offer and c != channel and t > AS_OF - s.offer_spacing_hours * HOUR]
        rules = [
            ("lifetime_max", len(mine) >= s.lifetime_max),
            ("cooldown", bool(mine) and max(mine) > AS_OF - s.cooldown_days * NS_PER_DAY),
            ("offer_on_other_channel", bool(elsewhere)),
            ("channel_daily_cap", day.count(channel) >= s.channel_daily_cap),
            ("channel_weekly_cap", week.count(channel) >= s.channel_weekly_cap),
            ("global_daily_cap", len(day) >= s.global_daily_cap),
            ("global_weekly_cap", len(week) >= s.global_weekly_cap),
        ]
        out.append(next((name for name, failed in rules if failed), ""))
    return out


def test_vectorised_verdict_matches_a_slow_loop_on_random_histories():
    rng = np.random.default_rng(3)
    settings = ContactSettings(channel_daily_cap=2, channel_weekly_cap=4, global_daily_cap=3, global_weekly_cap=7,
                               cooldown_days=2, lifetime_max=2, offer_spacing_hours=30)
    offer_of = {"m0": "a", "m1": "a", "m2": "b"}  # m3 is its own offer
    blocked = 0
    for _ in range(200):
        m = int(rng.integers(0, 12))
        shown = [(float(rng.uniform(-24, 24 * 9)), str(rng.choice(["email", "sms"])), f"m{rng.integers(4)}", "t") for _ in range(m)]
        candidates = [(c, f"m{i}", "t") for c in ("email", "sms", "push") for i in range(4)]
        h = _history(shown, offer_of=offer_of)
        reasons = _reasons(h, candidates, offer_of, **settings.model_dump())
        assert reasons == _slow_reasons(h, candidates, settings, offer_of)
        blocked += reasons.count("offer_on_other_channel")
    assert blocked > 50  # the offer rule decided some


def test_history_from_canonical_events_and_suppressed_counts():
    events = events_frame([
        {"ts": "2026-03-10T11:00:00Z", "event_type": "impression", "channel": "email", "message_id": "m1"},
        {"ts": "2026-03-09T12:00:00Z", "event_type": "impression", "channel": "email", "message_id": "m2", "topic": "own"},
        {"ts": "2026-03-01T00:00:00Z", "event_type": "complaint"},
        {"ts": "2026-03-02T00:00:00Z", "event_type": "unsubscribe", "channel": "sms"},
        {"ts": "2026-03-03T00:00:00Z", "event_type": "visit", "topic": "deals"},
    ])
    h = ContactHistory.from_events(events, topic_of={"m1": "deals", "m2": "deals"})
    assert h.impression_topic.tolist() == ["own", "deals"]  # sorted by ts; a logged topic wins
    assert h.unsubscribe_channel.tolist() == ["sms"] and len(h.complaint_ts) == 1
    channel, message, topic = np.array(["email", "email", "sms"]), np.array(["m1", "m3", "m3"]), np.array(["deals", "news", "news"])
    verdict = contact_verdict(channel, message, topic, h, AS_OF,
                              ContactSettings(promotional_topics=("deals",), channel_daily_cap=2))
    # m1 deals after the complaint 9.5 days ago; m3 email: 1 email today (m2 at exactly -24 h is out); sms: consent.
    assert verdict.counts() == {"complaint_suppression": 1, "consent": 1}


def test_contact_settings_load_from_toml_and_reject_unknown_keys(tmp_path):
    path = tmp_path / "nbm.toml"
    path.write_text('[policy.contact]\nchannel_daily_cap = 1\nglobal_weekly_cap = 5\npromotional_topics = ["deals"]\n'
                    '\n[policy.contact.channels.sms]\nweekly_cap = 2\n')
    contact = load_settings(path, environ=False).policy.contact
    assert (contact.channel_daily_cap, contact.global_weekly_cap, contact.channels["sms"].weekly_cap) == (1, 5, 2)
    assert contact.complaint_suppression_days == 30 and contact.cooldown_days is None and contact.offer_spacing_hours == 24
    path.write_text("[policy.contact]\noffer_spacing_hours = 0\n")
    assert load_settings(path, environ=False).policy.contact.offer_spacing_hours == 0
    for text, message in [("[policy.contact]\ndaily_cap = 1\n", "policy.contact.daily_cap: Extra inputs are not permitted"),
                          ("[policy.contact]\nglobal_daily_cap = -1\n", "policy.contact.global_daily_cap: Input should be greater than or equal to 0"),
                          ("[policy.contact]\noffer_spacing_hours = -1\n", "policy.contact.offer_spacing_hours: Input should be greater than or equal to 0"),
                          ("[policy]\nexplore = 'softmax'\n", "policy.explore: Extra inputs are not permitted")]:
        path.write_text(text)
        with pytest.raises(ConfigError, match=message):
            load_settings(path, environ=False)


def test_remaining_sends_is_the_tightest_cap_left():
    # Last 24 h: 1 email + 1 sms; last 7 days: 3 emails + 1 sms (two emails 3 days ago).
    history = _history([(2, "email", "a", "t"), (5, "sms", "b", "t"), (72, "email", "c", "t"), (73, "email", "d", "t")])
    caps = ContactSettings(channel_daily_cap=3, channel_weekly_cap=4, global_daily_cap=5)
    # email: daily 3 - 1 = 2, weekly 4 - 3 = 1, global daily 5 - 2 = 3 -> 1.
    assert remaining_sends("email", history, AS_OF, caps) == 1
    # sms: daily 3 - 1 = 2, weekly 4 - 1 = 3, global 3 -> 2. Across channels: global daily only, 3.
    assert remaining_sends("sms", history, AS_OF, caps) == 2
    assert remaining_sends(None, history, AS_OF, caps) == 3
    assert remaining_sends("email", history, AS_OF, ContactSettings()) == float("inf")
    # An impression exactly 24 h before as_of has left the daily window (see the module docstring).
    assert remaining_sends("push", _history([(24, "push", "a", "t")]), AS_OF, ContactSettings(channel_daily_cap=1)) == 1


LIMITS = {"channel_daily_cap": 2, "channel_weekly_cap": 4, "global_daily_cap": 3, "global_weekly_cap": 7,
          "cooldown_days": 2, "lifetime_max": 2}


def _random_case(rng: np.random.Generator) -> tuple[ContactHistory, list[tuple[str, str, str]]]:
    shown = [(float(rng.uniform(-24, 24 * 9)), str(rng.choice(["email", "sms"])), f"m{rng.integers(4)}", str(rng.choice(["t", "deals"])))
             for _ in range(int(rng.integers(0, 12)))]
    complaints = [float(rng.uniform(0, 24 * 40))] if rng.random() < 0.5 else []
    unsubscribes = [(float(rng.uniform(-24, 24 * 9)), "sms")] if rng.random() < 0.3 else []
    candidates = [(c, f"m{i}", t) for c in ("email", "sms", "push") for i in range(4) for t in ("t", "deals")]
    return _history(shown, complaints, unsubscribes), candidates


def test_a_limit_that_is_not_configured_judges_as_an_unreachable_one():
    # Checks left out are not computed at all: the verdict must be that of a limit nobody reaches.
    rng = np.random.default_rng(5)
    for _ in range(300):
        history, candidates = _random_case(rng)
        kept = {k: v for k, v in LIMITS.items() if rng.random() < 0.4}
        # A cooldown of a nanosecond blocks nothing here: no impression is that close before AS_OF.
        unreachable = {k: (10_000 if k != "cooldown_days" else 1 / NS_PER_DAY) for k in LIMITS if k not in kept}
        settings = {"promotional_topics": ("deals",), **kept}
        assert _reasons(history, candidates, **settings) == _reasons(history, candidates, **settings, **unreachable)


def test_impressions_are_read_only_by_limits_that_count_them():
    # The offer spacing is on by default (24 h): a decision on a catalog without shared offers turns it
    # off (for_catalog), for it cannot fail there.
    assert reads_impressions(ContactSettings())
    assert not reads_impressions(for_catalog(ContactSettings(), offers_shared=False))
    assert for_catalog(ContactSettings(), offers_shared=True) == ContactSettings()
    quiet = ContactSettings(offer_spacing_hours=0)
    assert not reads_impressions(quiet)
    assert not reads_impressions(quiet.model_copy(update={"complaint_suppression_days": 10, "promotional_topics": ("deals",)}))
    for name, value in LIMITS.items():
        assert reads_impressions(quiet.model_copy(update={name: value})), name
    assert reads_impressions(ContactSettings(channels={"sms": {"weekly_cap": 1}}))
    rng = np.random.default_rng(8)
    for _ in range(100):  # without such a limit, leaving the impressions out changes no verdict
        history, candidates = _random_case(rng)
        without = ContactHistory(history.impression_ts[:0], history.impression_channel[:0], history.impression_message[:0],
                                 history.impression_topic[:0], history.complaint_ts, history.unsubscribe_ts, history.unsubscribe_channel)
        assert _reasons(history, candidates, promotional_topics=("deals",)) == _reasons(without, candidates, promotional_topics=("deals",))


def test_the_history_from_an_encoded_log_is_the_one_from_events_and_without_impressions_keeps_the_rest():
    from engine.features.log import CatalogVocabularies, EventLog
    from tests.builders import DEFAULT_MESSAGES, messages_frame

    messages = messages_frame(DEFAULT_MESSAGES)
    events = events_frame([
        {"customer_id": "c1", "ts": "2026-03-10T11:00:00Z", "event_type": "impression", "channel": "email", "message_id": "m1"},
        {"customer_id": "c1", "ts": "2026-03-09T12:00:00Z", "event_type": "impression", "channel": "sms", "message_id": "m2"},
        {"customer_id": "c1", "ts": "2026-03-01T00:00:00Z", "event_type": "complaint"},
        {"customer_id": "c1", "ts": "2026-03-02T00:00:00Z", "event_type": "unsubscribe", "channel": "sms"},
        {"customer_id": "c1", "ts": "2026-03-03T00:00:00Z", "event_type": "visit", "topic": "deals"},
    ])
    vocab = CatalogVocabularies.from_messages(messages)
    log = EventLog.from_events(events, vocab)
    message_topic = np.array([vocab.topics.index(t) for t in messages.set_index("message_id").loc[list(vocab.messages.values), "topic"]])
    full = ContactHistory.from_log(log, vocab, message_topic)
    reference = ContactHistory.from_events(events, topic_of=dict(zip(messages["message_id"], messages["topic"])))
    for name in ("impression_ts", "impression_channel", "impression_message", "impression_topic", "complaint_ts",
                 "unsubscribe_ts", "unsubscribe_channel"):
        assert getattr(full, name).tolist() == getattr(reference, name).tolist(), name
    lean = ContactHistory.from_log(log, vocab, message_topic, impressions=False)
    assert len(lean.impression_ts) == len(lean.impression_weight) == 0
    for name in ("complaint_ts", "unsubscribe_ts", "unsubscribe_channel"):
        assert getattr(lean, name).tolist() == getattr(full, name).tolist(), name
    candidates = [("sms", "m2", "t"), ("email", "m1", "t")]
    assert _reasons(lean, candidates) == _reasons(full, candidates) == ["consent", "complaint_suppression"]


def test_when_nothing_can_fail_every_candidate_passes_and_otherwise_the_shortcut_is_not_taken():
    rng = np.random.default_rng(11)
    seen = {True: 0, False: 0}
    for _ in range(300):
        history, candidates = _random_case(rng)
        kept = {k: v for k, v in LIMITS.items() if rng.random() < 0.1}
        settings = ContactSettings(promotional_topics=("deals",), offer_spacing_hours=0, **kept)
        reasons = _reasons(history, candidates, **settings.model_dump())
        quiet = passes_everyone(history, AS_OF, settings)
        seen[quiet] += 1
        if quiet:
            assert reasons == [""] * len(candidates)
        elif not kept:  # without limits only consent or a recent complaint can block: one of them does here
            assert any(r in ("consent", "complaint_suppression") for r in reasons)
    assert seen[True] > 20 and seen[False] > 20  # both sides were exercised


def test_batch_standing_equals_each_customers_own_history(tmp_path):
    # The batch's consent and complaint reads against a loop over one ContactHistory per customer.
    from engine.features.log import EVENT_CODE, EventLog
    from engine.features.vocab import Vocabulary
    from engine.policy.contact import batch_standing

    rng = np.random.default_rng(5)
    n, customers, channels = 400, 12, 3
    kinds = np.array([EVENT_CODE[k] for k in ("unsubscribe", "complaint", "visit", "impression")], dtype=np.int8)
    arrays = {"customer": rng.integers(0, customers, n).astype(np.int32), "ts": AS_OF + rng.integers(-60, 5, n) * NS_PER_DAY,
              "event_type": rng.choice(kinds, n), "channel": rng.integers(-1, channels, n).astype(np.int16),
              "topic": np.full(n, -1, np.int16), "message": np.full(n, -1, np.int32), "value": np.full(n, np.nan),
              "weight": np.ones(n, np.int64)}
    as_of = AS_OF + rng.integers(-30, 3, customers) * NS_PER_DAY
    first = int(np.flatnonzero(arrays["customer"] == 0)[0])
    arrays["event_type"][first], arrays["channel"][first] = EVENT_CODE["unsubscribe"], 1
    as_of[0] = arrays["ts"][first]  # an unsubscribe exactly at as_of does not count yet
    last = arrays["customer"] == customers - 1  # only visits, and a complaint exactly 30 days before as_of: outside
    arrays["event_type"][last] = EVENT_CODE["visit"]
    at_edge = int(np.flatnonzero(last)[0])
    arrays["event_type"][at_edge], arrays["ts"][at_edge] = EVENT_CODE["complaint"], as_of[-1] - 30 * NS_PER_DAY
    log = EventLog.from_arrays(Vocabulary(tuple(f"c{i}" for i in range(customers))), arrays)
    vocab = type("Vocab", (), {"channels": Vocabulary(("email", "push", "sms"))})()
    for days in (30.0, 0.0, 1e9):
        settings = ContactSettings(complaint_suppression_days=days, offer_spacing_hours=0)
        standing = batch_standing(log, as_of, channels, settings)
        for c in range(customers):
            own = log.take(log.customer == c)
            history = ContactHistory.from_log(own, vocab, np.zeros(0, np.int64), impressions=False)
            assert standing.passes_everyone(c, settings) == passes_everyone(history, as_of[c], settings)
            gone = set(own.channel[(own.event_type == EVENT_CODE["unsubscribe"]) & (own.ts < as_of[c])].tolist())
            assert {code for code in range(-1, channels) if standing.unsubscribed[c, code]} == gone
        assert standing.passes_everyone(customers - 1, settings) == (days != 1e9)
        with_caps = ContactSettings(complaint_suppression_days=days, channel_daily_cap=99)
        assert not any(standing.passes_everyone(c, with_caps) for c in range(customers))  # caps read impressions
