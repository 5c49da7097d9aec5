"""Metrics (Prometheus) and tracing (OpenTelemetry) for every service.

Trace context travels in NATS headers, so one job's spans link across services. Spans are exported to
the console when PRESSROOM_TRACE_CONSOLE is set; otherwise only the context is propagated, for an
operator to plug an exporter into the SDK's provider.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import ConsoleSpanExporter, SimpleSpanProcessor
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_asgi_app


@cache
def tracer_provider(service: str) -> TracerProvider:
    provider = TracerProvider(resource=Resource.create({"service.name": f"pressroom-{service}"}))
    if os.environ.get("PRESSROOM_TRACE_CONSOLE"):
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    return provider


def broker_middlewares(service: str) -> list[Any]:
    return [NatsTelemetryMiddleware(tracer_provider=tracer_provider(service))]


# Labels are bounded on purpose (consumer, outcome, event type): never a job id or a subject.
MESSAGES = Counter(
    "pressroom_messages_total",
    "Messages a consumer settled, by outcome: acked, retried, failed, rejected, stopped.",
    ["consumer", "outcome"],
)
HANDLER_SECONDS = Histogram(
    "pressroom_handler_seconds",
    "Time a handler spent on one message.",
    ["consumer"],
    buckets=(0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300),
)
PUBLISHED = Counter("pressroom_events_published_total", "Stored events published, by type.", ["type"])

# Lag, for deciding replicas (read from the durable's info every PRESSROOM_LAG_INTERVAL_SECONDS; every
# replica reports the same durable-wide value, so take the max, not the sum, across replicas).
PENDING = Gauge(
    "pressroom_consumer_pending", "Messages of the durable not yet delivered to any replica.", ["durable"]
)
ACK_PENDING = Gauge(
    "pressroom_consumer_ack_pending",
    "Messages of the durable delivered and not yet acknowledged (all replicas).",
    ["durable"],
)
# In-flight work of this replica (sum across replicas).
SLOTS = Gauge("pressroom_consumer_slots", "Messages this replica may work on at once.", ["durable"])
SLOTS_IN_USE = Gauge(
    "pressroom_consumer_slots_in_use", "Messages this replica is working on now.", ["durable"]
)
WAITING = Gauge(
    "pressroom_consumer_waiting",
    "Messages this replica keeps while a dependency is down (no new ones are fetched meanwhile).",
    ["durable"],
)


def metrics_app() -> Any:
    """GET /metrics in Prometheus text format (this process's default registry)."""
    return make_asgi_app(REGISTRY)
