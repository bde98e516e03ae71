"""Prometheus metrics of one server process (scraped at ``/metrics``)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """The counters the API keeps; one registry per app, so tests can make many apps."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "guardian_http_requests_total",
            "HTTP requests by method, route and status.",
            ["method", "route", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "guardian_http_request_seconds",
            "HTTP request latency by route.",
            ["route"],
            buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.verdicts = Counter(
            "guardian_verify_verdicts_total",
            "Verify answers by verdict.",
            ["verdict"],
            registry=self.registry,
        )
        self.jobs = Gauge(
            "guardian_jobs",
            "Jobs in the database by state (read at scrape time).",
            ["state"],
            registry=self.registry,
        )


__all__ = ["Metrics"]
