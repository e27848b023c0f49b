"""Prometheus metrics of one app, in its own registry (two apps in one process never share counters).

With ``--workers`` > 1 every worker process counts its own requests; see README "Serving".
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# Decisions take milliseconds; a batch of 1,000 takes seconds.
_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("nbm_http_requests", "HTTP requests by route template, method and status.",
                                ("route", "method", "status"), registry=r)
        self.latency = Histogram("nbm_http_request_duration_seconds", "Time to answer a request, by route and status.",
                                 ("route", "method", "status"), buckets=_LATENCY_BUCKETS, registry=r)
        self.decisions = Counter("nbm_decisions", "Decisions made, by channel.", ("channel",), registry=r)
        self.messages_served = Counter("nbm_messages_served", "Messages returned in decisions, by channel and message.",
                                       ("channel", "message_id"), registry=r)
        self.cold_starts = Counter("nbm_cold_start_decisions", "Decisions for customers the model has not seen.",
                                   ("channel",), registry=r)
        self.suppressions = Counter("nbm_suppressions", "Candidates suppressed by a policy rule.", ("rule",), registry=r)
        self.events = Counter("nbm_events", "Events received by POST /v1/events, by outcome (stored, duplicate).",
                              ("outcome",), registry=r)
        self.events_rejected = Counter("nbm_events_rejected", "Invalid events refused, by reason code.", ("reason",), registry=r)
        self.events_late = Counter("nbm_events_late", "Events stored that the serving model cannot use until the next "
                                   "training: stamped before its feature cutoff (opt-outs and complaints never).", registry=r)
        self.reloads = Counter("nbm_model_reloads", "Model loads, by outcome (ok, failed).", ("outcome",), registry=r)
        self.model_info = Gauge("nbm_model_info", "1 for the model version being served.", ("version",), registry=r)
        self.decision_batch_size = Histogram(
            "nbm_decision_batch_size", "Single decisions answered together (concurrent requests, serving/batcher.py).",
            buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)
        self.decision_log_failures = Counter("nbm_decision_log_failures", "Decisions served but not logged (store down).",
                                             registry=r)
        self.decisions_pruned = Counter("nbm_decision_log_pruned", "Decisions deleted from the decision log by its "
                                        "retention ([serving] decision_log_retention_days).", registry=r)

    def set_model(self, version: str) -> None:
        self.model_info.clear()
        self.model_info.labels(version=version).set(1)

    def render(self) -> bytes:
        return generate_latest(self.registry)
