"""Prometheus metrics: request counts and latencies by route, queue depths (read at scrape)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from starlette.types import ASGIApp, Message, Receive, Scope, Send

registry = CollectorRegistry()
requests_total = Counter("tradewindow_http_requests_total", "HTTP requests",
                         ["method", "route", "status"], registry=registry)
request_seconds = Histogram("tradewindow_http_request_duration_seconds", "HTTP request latency",
                            ["method", "route"], registry=registry,
                            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
queue_depth = Gauge("tradewindow_job_queue_depth", "Jobs by status", ["status"], registry=registry)
outbox_backlog = Gauge("tradewindow_outbox_unrelayed_events", "Events not yet relayed",
                       registry=registry)


def render_metrics() -> bytes:
    return generate_latest(registry)


class MetricsMiddleware:
    """Counts every request under its route template (/api/v1/enterprises/{enterprise_id}), so
    ids do not explode the label space."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = getattr(scope.get("route"), "path", None) or "unmatched"
            requests_total.labels(scope["method"], route, str(status)).inc()
            request_seconds.labels(scope["method"], route).observe(time.perf_counter() - started)
