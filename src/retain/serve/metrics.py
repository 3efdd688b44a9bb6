"""Prometheus metrics: requests and latency per route, and the journal's figures.

Request counters and latency histograms are kept per process; with several workers
(``PROMETHEUS_MULTIPROC_DIR`` set by ``retain serve``) prometheus_client sums them across
processes from its files. The prequential error per version, the labels waiting and the update
outcomes are read from the journal at each scrape, so every worker reports the same figures
and a restart does not reset them.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.multiprocess import MultiProcessCollector

from retain.serve.journal import Journal

BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)


class JournalCollector:
    """Figures read from the journal when Prometheus scrapes."""

    def __init__(self, journal: Journal | None, serving: Any, collector: Any = None):
        self.journal = journal
        self.serving = serving  # () -> the version this worker serves

    def collect(self) -> Iterator[Any]:
        error = GaugeMetricFamily("retain_serve_prequential_error", "mean test-then-train "
                                  "error of the predictions each version made", labels=["version"])
        labels = CounterMetricFamily("retain_serve_prequential_labels", "labels that scored "
                                     "each version's predictions", labels=["version"])
        for version, figures in sorted(self.journal.prequential().items()):
            error.add_metric([str(version)], figures["error"])
            labels.add_metric([str(version)], figures["labels"])
        yield error
        yield labels
        yield GaugeMetricFamily("retain_serve_pending_labels", "labels waiting for an update",
                                value=self.journal.unused())
        yield GaugeMetricFamily("retain_serve_version", "the version serving predictions",
                                value=self.serving())
        outcomes = CounterMetricFamily("retain_serve_updates", "updates by outcome",
                                       labels=["status"])
        counts: dict[str, int] = {}
        for update in self.journal.updates():
            counts[update["status"]] = counts.get(update["status"], 0) + 1
        for status, n in sorted(counts.items()):
            outcomes.add_metric([status], n)
        yield outcomes


class Metrics:
    """The request metrics of one app, and the text ``/metrics`` answers with."""

    def __init__(self, journal: Journal | None, serving: Any, collector: Any = None):
        shared = "PROMETHEUS_MULTIPROC_DIR" in os.environ
        self.registry = CollectorRegistry()
        own = None if shared else self.registry
        self.requests = Counter("retain_serve_requests", "HTTP requests by route and status",
                                ["route", "status"], registry=own)
        self.latency = Histogram("retain_serve_request_seconds", "time to answer, by route",
                                 ["route"], buckets=BUCKETS, registry=own)
        if shared:
            MultiProcessCollector(self.registry)
        # the figures read at each scrape: the journal's, or ``collector``'s (forecast stores)
        self.registry.register(collector or JournalCollector(journal, serving))

    def observe(self, route: str, status: int, started: float) -> None:
        self.requests.labels(route, str(status)).inc()
        self.latency.labels(route).observe(time.perf_counter() - started)

    def text(self) -> bytes:
        return generate_latest(self.registry)
