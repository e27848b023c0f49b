"""The ``make loadtest`` workload for locust: by request count 80% single decisions, 15% event posts, 5% batches.

    locust -f bench/locustfile.py --headless -u 8 -r 8 -t 60s --host http://127.0.0.1:PORT

Customers are the known ids of the bench world (``bench/_server.py``); events are 1-5 impressions or clicks
of catalog messages of one channel, each with a fresh ``event_id`` and a zoned ``ts`` a few seconds ago, so
every one is valid under docs/data-contract.md ("Events sent to the API"). Users send back to back (no wait):
the load is as high as the server answers. With ``NBM_LOADTEST_USER_RATE`` each user waits a random,
exponentially distributed time of mean 1 / rate after each answer: a paced load below the server's limit
whose requests arrive as independent customers' would, not in the lock-step bursts of a fixed pace.
"""

from __future__ import annotations

import itertools
import os
import random
import uuid
from datetime import UTC, datetime, timedelta

from _server import world_catalog
from locust import FastHttpUser, task

CUSTOMERS, MESSAGES_BY_CHANNEL = world_catalog()
CHANNELS = sorted(MESSAGES_BY_CHANNEL)
BATCH_SIZE = 10
_seeds = itertools.count()  # one seeded stream per simulated user


def decision_request(rng: random.Random) -> dict:
    return {"customer_id": rng.choice(CUSTOMERS), "channel": rng.choice(CHANNELS)}


def events_for_one_customer(rng: random.Random, now: datetime) -> list[dict]:
    customer, channel = rng.choice(CUSTOMERS), rng.choice(CHANNELS)
    return [{"event_id": f"loadtest-{uuid.uuid4().hex}",
             "ts": (now - timedelta(seconds=rng.uniform(1.0, 10.0))).isoformat(),
             "customer_id": customer, "event_type": rng.choice(("impression", "click")),
             "channel": channel, "message_id": rng.choice(MESSAGES_BY_CHANNEL[channel])}
            for _ in range(rng.randint(1, 5))]


USER_RATE = os.environ.get("NBM_LOADTEST_USER_RATE")


class ApiUser(FastHttpUser):
    def on_start(self) -> None:
        self.rng = random.Random(next(_seeds))

    def wait_time(self) -> float:
        return self.rng.expovariate(float(USER_RATE)) if USER_RATE else 0.0

    @task(16)
    def decision(self) -> None:
        self.client.post("/v1/decisions", json=decision_request(self.rng))

    @task(3)
    def events(self) -> None:
        self.client.post("/v1/events", json={"events": events_for_one_customer(self.rng, datetime.now(UTC))})

    @task(1)
    def batch(self) -> None:
        self.client.post("/v1/decisions/batch", json={"requests": [decision_request(self.rng) for _ in range(BATCH_SIZE)]})
