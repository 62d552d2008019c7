"""GET /metrics in the Prometheus text format: what the live side holds right now, and
how often the execution seam's fast path fell back to graphql-core's way.

The numbers are read from the realtime hub (and its broker and WebSocket endpoint) and
from the seam's fallback counts at scrape time, so nothing has to keep gauges in step;
each app has its own registry.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Protocol

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector
from starlette.requests import Request
from starlette.responses import Response

PREFIX = "sessionhub_realtime_"
FALLBACKS = "sessionhub_fast_path_fallbacks"  # a counter: exposed with _total

# Totals since start; everything else is a level.
COUNTERS = {
    "overflows",
    "broker_published",
    "broker_publish_failures",
    "broker_local_deliveries",
    "redis_reconnects",
    "redis_published",
    "redis_publish_failures",
    "redis_dropped",
    "redis_received",
}

HELP = {
    "groups": "Subscription groups (one execution per event each).",
    "members": "Live subscriptions.",
    "channels": "Broker channels this instance follows.",
    "channel_workers": "Tasks handling notifications right now.",
    "pending_notifications": "Notifications waiting for their channel's worker.",
    "overflows": "Subscriptions ended because their client fell behind.",
    "ws_connections": "Open GraphQL WebSocket connections.",
    "ws_operations": "Operations open on them.",
    "ws_tasks": "Tasks of WebSocket connections and operations.",
    "ws_queued_messages": "Messages waiting to be written to sockets.",
    "redis_connected": "1 while the subscribing Redis connection is up.",
    "redis_publish_failures": "Failed attempts to publish to Redis (never failing a write).",
    "redis_dropped": "Notifications dropped from a full Redis publish backlog.",
    "redis_publish_backlog": "Notifications waiting to be published to Redis.",
}


class _RealtimeCollector(Collector):
    def __init__(self, stats: Callable[[], dict[str, int | float]]) -> None:
        self._stats = stats

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        for name, value in sorted(self._stats().items()):
            documentation = HELP.get(name, name.replace("_", " ") + ".")
            if name in COUNTERS:
                family: GaugeMetricFamily | CounterMetricFamily = CounterMetricFamily(
                    PREFIX + name, documentation, value=value
                )
            else:
                family = GaugeMetricFamily(PREFIX + name, documentation, value=value)
            yield family


class FallbackCounts(Protocol):
    def snapshot(self) -> dict[str, int]: ...


class _FallbackCollector(Collector):
    def __init__(self, fallbacks: FallbackCounts) -> None:
        self._fallbacks = fallbacks

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily(
            FALLBACKS,
            "Objects (or requests, for middleware) the fast path handed back to graphql-core's "
            "executor, by reason (server/execution/fast_path.py).",
            labels=["reason"],
        )
        for reason, count in sorted(self._fallbacks.snapshot().items()):
            family.add_metric([reason], count)
        yield family


def metrics_endpoint(
    stats: Callable[[], dict[str, int | float]],
    fallbacks: FallbackCounts | None = None,
) -> Callable[[Request], Awaitable[Response]]:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_RealtimeCollector(stats))
    if fallbacks is not None:
        registry.register(_FallbackCollector(fallbacks))

    async def metrics(request: Request) -> Response:
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)

    return metrics
