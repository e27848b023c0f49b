"""Write events.csv of the bring-your-own-data example (docs/tutorial.md) from messages.csv and customers.csv.

The example stands for a small coffee and tea shop's export: a weekly email on Tuesdays, a weekly SMS
on Fridays, a web banner on every site visit, the customers' opens, clicks and conversions, their
purchases, and a few opt-outs, complaints, surveys and support contacts. Impressions carry no
propensity (the shop never logged one). Every customer has a favourite topic, which their visits show
and which makes them respond more: that is the signal a model can learn and popularity cannot.

The rows are drawn with a fixed seed, so running this again writes the same file:
    python docs/examples/byo/make_events.py [OUT.csv]   (default: events.csv beside this script)
Only the standard library is used, so the script reads as the data does.
"""

from __future__ import annotations

import csv
import random
import sys
from dataclasses import dataclass, replace
from datetime import datetime, timedelta, timezone
from pathlib import Path

HERE = Path(__file__).resolve().parent
SEED = 2026
START = datetime(2026, 9, 7, tzinfo=timezone.utc)  # a Monday
WEEKS = 10
# Outcomes count within a message's attribution_days (messages.csv) or, where it gives none, within this
# many days: [training] attribution_days in nbm.toml beside this script.
DEFAULT_ATTRIBUTION_DAYS = 3.0
TOPICS = ("coffee", "tea", "brewing")
FAVOURITE_SHARE = (0.5, 0.3, 0.2)  # of the customers, per topic above
# Probabilities of a response, for a message on the customer's favourite topic and on another one.
OPEN = {"email": (0.50, 0.25)}  # SMS and web banners report no opens
CLICK = {"email": (0.45, 0.06), "sms": (0.22, 0.03), "web": (0.20, 0.03)}  # email: after an open
CONVERT = 0.3  # after a click
VISITS_PER_WEEK = {"new": 1.0, "regular": 1.2, "vip": 2.0}
PURCHASES_PER_WEEK = {"new": 0.05, "regular": 0.10, "vip": 0.25}  # besides conversions
PRICES = {"coffee": (9.5, 12.0, 18.0, 24.0), "tea": (6.5, 8.0, 15.0), "brewing": (29.0, 45.0, 60.0, 89.0)}
ORDER = ("visit", "impression", "open", "click", "conversion", "purchase", "complaint", "unsubscribe", "support", "survey")
COLUMNS = ("event_id", "ts", "customer_id", "event_type", "channel", "message_id", "value", "topic")


@dataclass(frozen=True)
class Message:
    message_id: str
    channel: str
    topic: str
    valid_from: datetime
    attribution_days: float


@dataclass(frozen=True)
class Customer:
    customer_id: str
    segment: str
    favourite: str


@dataclass(frozen=True)
class Event:
    ts: datetime
    customer_id: str
    event_type: str
    channel: str = ""
    message_id: str = ""
    value: str = ""
    topic: str = ""


def read_messages(path: Path) -> list[Message]:
    with path.open(newline="") as f:
        return [Message(row["message_id"], row["channel"], row["topic"],
                        datetime.fromisoformat(row["valid_from"]).replace(tzinfo=timezone.utc),
                        float(row["attribution_days"] or DEFAULT_ATTRIBUTION_DAYS)) for row in csv.DictReader(f)]


def read_customers(path: Path, rng: random.Random) -> list[Customer]:
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return [Customer(row["customer_id"], row["segment"], rng.choices(TOPICS, FAVOURITE_SHARE)[0]) for row in rows]


def later(ts: datetime, rng: random.Random, minutes: tuple[int, int], step: int) -> datetime:
    """A round time some minutes after ts: between minutes[0] and minutes[1], a multiple of step."""
    return ts + timedelta(minutes=step * rng.randint(minutes[0] // step, minutes[1] // step))


def respond(customer: Customer, message: Message, sent: datetime, rng: random.Random) -> list[Event]:
    """Opens, clicks, a conversion and its purchase for one impression."""
    match = 0 if message.topic == customer.favourite else 1
    about = {"customer_id": customer.customer_id, "channel": message.channel, "message_id": message.message_id}
    events: list[Event] = []
    ts = sent
    if message.channel in OPEN:
        if rng.random() >= OPEN[message.channel][match]:
            return events
        ts = later(ts, rng, (15, 240), 15)
        events.append(Event(ts, event_type="open", **about))
    if rng.random() >= CLICK[message.channel][match]:
        return events
    ts = later(ts, rng, (5, 30), 5)
    events.append(Event(ts, event_type="click", **about))
    if rng.random() >= CONVERT:
        return events
    # Most buy at once; some come back within the message's own attribution window.
    days = 0 if rng.random() < 0.6 else rng.randint(1, max(int(message.attribution_days) - 1, 1))
    ts = later(ts + timedelta(days=days), rng, (10, 60), 10)
    events.append(Event(ts, event_type="conversion", **about))
    events.append(Event(ts, customer.customer_id, "purchase", "web", value=f"{rng.choice(PRICES[message.topic]):.2f}",
                        topic=message.topic))
    return events


def campaign(customers: list[Customer], messages: list[Message], channel: str, day: datetime, stopped: set[tuple[str, str]],
             rng: random.Random) -> list[Event]:
    """One send on a channel: every customer who has not opted out gets one of its valid messages, at random."""
    offer = [m for m in messages if m.channel == channel and m.valid_from <= day]
    events: list[Event] = []
    for customer in customers:
        if (customer.customer_id, channel) in stopped:
            continue
        message = rng.choice(offer)
        events.append(Event(day, customer.customer_id, "impression", channel, message.message_id))
        events += respond(customer, message, day, rng)
    return events


def browsing(customer: Customer, messages: list[Message], week: datetime, rng: random.Random) -> list[Event]:
    """A week of site visits, each showing a web banner, and purchases made without any message."""
    events: list[Event] = []
    visits = sum(rng.random() < VISITS_PER_WEEK[customer.segment] / 3 for _ in range(3))
    for _ in range(visits):
        at = week + timedelta(days=rng.randint(0, 6), hours=rng.randint(7, 21), minutes=rng.choice((0, 30)))
        topic = customer.favourite if rng.random() < 0.7 else rng.choice(TOPICS)
        events.append(Event(at, customer.customer_id, "visit", "web", topic=topic))
        banner = rng.choice([m for m in messages if m.channel == "web" and m.valid_from <= at])
        shown = at + timedelta(minutes=1)
        events.append(Event(shown, customer.customer_id, "impression", "web", banner.message_id))
        events += respond(customer, banner, shown, rng)
    if rng.random() < PURCHASES_PER_WEEK[customer.segment]:
        at = week + timedelta(days=rng.randint(0, 6), hours=rng.randint(8, 20))
        topic = customer.favourite if rng.random() < 0.8 else rng.choice(TOPICS)
        events.append(Event(at, customer.customer_id, "purchase", "web", value=f"{rng.choice(PRICES[topic]):.2f}", topic=topic))
    return events


def at_week(week: int, weekday: int, hour: int) -> datetime:
    return START + timedelta(weeks=week, days=weekday, hours=hour)


def voice() -> list[Event]:
    """Hand-picked opt-outs, complaints, surveys and support contacts. The SMS complaint names the message
    the customer got an hour before (filled in by ``about_last_sms``)."""
    return [
        Event(at_week(2, 4, 13), "c012", "complaint", "sms", "<last sms>"),
        Event(at_week(2, 4, 13) + timedelta(minutes=5), "c012", "unsubscribe", "sms"),
        Event(at_week(4, 2, 18), "c031", "unsubscribe", "email"),
        Event(at_week(5, 4, 12) + timedelta(minutes=30), "c040", "unsubscribe", "sms"),
        Event(at_week(3, 3, 10), "c023", "support", "web"),
        Event(at_week(3, 3, 11), "c023", "complaint", "web"),
        Event(at_week(6, 0, 9), "c007", "support", "web"),
        Event(at_week(1, 5, 10), "c007", "survey", "email", value="9"),
        Event(at_week(4, 6, 16), "c023", "survey", "email", value="4"),
        Event(at_week(6, 2, 19), "c040", "survey", "email", value="7"),
    ]


def about_last_sms(event: Event, events: list[Event]) -> Event:
    if event.message_id != "<last sms>":
        return event
    sent = [e for e in events if e.event_type == "impression" and e.channel == "sms" and e.customer_id == event.customer_id
            and e.ts < event.ts]
    return replace(event, message_id=max(sent, key=lambda e: e.ts).message_id)


def opted_out(planned: list[Event], before: datetime) -> set[tuple[str, str]]:
    return {(e.customer_id, e.channel) for e in planned if e.event_type == "unsubscribe" and e.ts < before}


def all_events(customers: list[Customer], messages: list[Message], rng: random.Random) -> list[Event]:
    planned = voice()
    missing = sorted({e.customer_id for e in planned} - {c.customer_id for c in customers})
    if missing:
        raise SystemExit(f"customers.csv: no row for {', '.join(missing)}, named by the hand-picked events")
    events: list[Event] = []
    for week in range(WEEKS):
        monday = START + timedelta(weeks=week)
        for channel, send in (("email", monday + timedelta(days=1, hours=9)), ("sms", monday + timedelta(days=4, hours=12))):
            events += campaign(customers, messages, channel, send, opted_out(planned, send), rng)
        for customer in customers:
            events += browsing(customer, messages, monday, rng)
    events += [about_last_sms(e, events) for e in planned]
    end = START + timedelta(weeks=WEEKS)
    return sorted((e for e in events if e.ts < end), key=lambda e: (e.ts, e.customer_id, ORDER.index(e.event_type)))


def write_events(events: list[Event], path: Path) -> None:
    with path.open("w", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(COLUMNS)
        for i, e in enumerate(events, start=1):
            out.writerow((f"e{i:05d}", e.ts.strftime("%Y-%m-%dT%H:%M:%SZ"), e.customer_id, e.event_type, e.channel,
                          e.message_id, e.value, e.topic))


def main(out: Path = HERE / "events.csv") -> None:
    rng = random.Random(SEED)
    messages = read_messages(HERE / "messages.csv")
    customers = read_customers(HERE / "customers.csv", rng)
    write_events(all_events(customers, messages, rng), out)


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / "events.csv")
