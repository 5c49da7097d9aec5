"""Metrics (Prometheus) and tracing (OpenTelemetry) for every service.

Trace context travels in NATS headers, so one job's spans link across services: each job is one trace,
rooted where the gateway starts it (job_trace). Spans are exported over OTLP/HTTP when
OTEL_EXPORTER_OTLP_ENDPOINT (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) is set, the exporter reading the
standard OTEL_* variables itself, and to the console when PRESSROOM_TRACE_CONSOLE is set. Outgoing HTTP
calls (model providers through the SDK's httpx2, Tavily through httpx) become spans of the job too.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cache
from typing import Any

from faststream.nats.opentelemetry import NatsTelemetryMiddleware
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.httpx import HTTPX2ClientInstrumentor, HTTPXClientInstrumentor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, ConsoleSpanExporter, SimpleSpanProcessor
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, make_asgi_app

# The job's trace from message to message: `traceparent` in the headers of every stored event, put there
# by the publisher (broker.Publisher) and read by the consumer.
PROPAGATOR = TraceContextTextMapPropagator()


def otlp_endpoint() -> str | None:
    return os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or os.environ.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )


@cache
def tracer_provider(service: str) -> TracerProvider:
    # Shut down (and so flushed) at interpreter exit by the SDK itself.
    console, otlp = bool(os.environ.get("PRESSROOM_TRACE_CONSOLE")), bool(otlp_endpoint())
    exported = console or otlp
    # With nothing to export to, spans are not recorded (ALWAYS_OFF): every hop still carries the job's
    # trace id in `traceparent`, without the cost of building spans nobody sees (measured: a large share
    # of every service's CPU per message under load).
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"pressroom-{service}"}),
        sampler=None if exported else ALWAYS_OFF,
    )
    if console:
        provider.add_span_processor(SimpleSpanProcessor(ConsoleSpanExporter()))
    if otlp:
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    if exported:  # client spans cost nothing worth measuring, but only matter when someone sees them
        HTTPXClientInstrumentor().instrument(tracer_provider=provider)
        HTTPX2ClientInstrumentor().instrument(tracer_provider=provider)
    return provider


@contextmanager
def job_trace(service: str, job_id: str) -> Iterator[None]:
    """A new trace for one job, linked to the request that started it (an HTTP call, a WebSocket frame),
    so that each job is one trace however many a connection starts."""
    started_by = trace.get_current_span().get_span_context()
    tracer = tracer_provider(service).get_tracer("pressroom")
    with tracer.start_as_current_span(
        "job.start",
        context=Context(),  # no parent: the root of the job's trace
        links=[trace.Link(started_by)] if started_by.is_valid else [],
        kind=trace.SpanKind.PRODUCER,
        attributes={"pressroom.job_id": job_id},
    ):
        yield


def trace_headers(headers: dict[str, str], service: str) -> dict[str, str]:
    """`headers` with the current trace in them (`traceparent`); outside any trace, a new one starts
    with this message."""
    if trace.get_current_span().get_span_context().is_valid:
        PROPAGATOR.inject(headers)
    else:
        tracer = tracer_provider(service).get_tracer("pressroom")
        with tracer.start_as_current_span("publish", kind=trace.SpanKind.PRODUCER):
            PROPAGATOR.inject(headers)
    return headers


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
COST = Counter(
    "pressroom_cost_usd",
    "Estimated provider cost (USD) of the usage.recorded events published, by stage; duplicates not counted.",
    ["stage"],
)

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
DEAD_LETTERS = Counter(
    "pressroom_dead_letters_total",
    "Messages a consumer gave up on (terminated, or given up by the server after max_deliver), by reason.",
    ["consumer", "reason"],
)
WAITING = Gauge(
    "pressroom_consumer_waiting",
    "Messages this replica keeps while a dependency is down (no new ones are fetched meanwhile).",
    ["durable"],
)


def metrics_app() -> Any:
    """GET /metrics in Prometheus text format (this process's default registry)."""
    return make_asgi_app(REGISTRY)
