"""The HTTP load of the serving benchmarks: closed-loop clients on keep-alive connections, and the
decision requests of a bench world."""

from __future__ import annotations

import http.client
import json
import random
import threading
import time
from collections.abc import Callable

import numpy as np
from _server import BenchWorld, Server, world_catalog

Request = tuple[str, str, str | None]  # method, path, body


def decision_requests(bench: BenchWorld) -> tuple[str, Callable[[random.Random], Request]]:
    """("N-M candidates per channel", a maker of POST /v1/decisions requests for random customers and
    channels of the bench world, k = 1)."""
    customers, messages_by_channel = world_catalog(bench)
    channels = sorted(messages_by_channel)
    per_channel = [len(ids) for ids in messages_by_channel.values()]

    def decision(rng: random.Random) -> Request:
        body = {"customer_id": rng.choice(customers), "channel": rng.choice(channels), "k": 1}
        return "POST", "/v1/decisions", json.dumps(body)

    return f"{min(per_channel)}-{max(per_channel)} candidates per channel", decision


def load(port: int, make_request, seconds: float, concurrency: int) -> tuple[np.ndarray, int, list[str], float]:
    """Closed-loop load: ``concurrency`` clients, each sending its next request when the last one is answered.
    Returns (latencies in s of 2xx answers, error count, a few error samples, elapsed s)."""
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors = [0] * concurrency
    samples: list[str] = []
    deadline = time.perf_counter() + seconds

    def client(i: int) -> None:
        rng = random.Random(i)
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        while time.perf_counter() < deadline:
            method, path, body = make_request(rng)
            headers = {"Content-Type": "application/json"} if body is not None else {}
            started = time.perf_counter()
            try:
                connection.request(method, path, body=body, headers=headers)
                response = connection.getresponse()
                payload = response.read()
            except OSError as exc:  # a timeout or a dropped connection is an error too: count it, reconnect
                errors[i] += 1
                if len(samples) < 3:
                    samples.append(f"{type(exc).__name__}: {exc}")
                connection.close()
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                continue
            if 200 <= response.status < 300:
                latencies[i].append(time.perf_counter() - started)
            else:
                errors[i] += 1
                if len(samples) < 3:
                    samples.append(f"{response.status} {payload[:200]!r}")
        connection.close()

    threads = [threading.Thread(target=client, args=(i,)) for i in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return np.array([x for part in latencies for x in part]), sum(errors), samples, time.perf_counter() - started


def load_on(server: Server, make_request, seconds: float, concurrency: int) -> tuple[tuple[np.ndarray, int, list[str], float], float | None]:
    """:func:`load` on a running server, and the server's CPU time per answered request in us (None
    without /proc): unlike throughput, hardly moved by what the client and the machine's neighbours do."""
    before = server.cpu_seconds()
    result = load(server.port, make_request, seconds, concurrency)
    after = server.cpu_seconds()
    answered = len(result[0]) + result[1]
    cpu_us = None if before is None or after is None or not answered else (after - before) / answered * 1e6
    return result, cpu_us
