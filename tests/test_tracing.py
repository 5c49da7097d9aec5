"""Traces over OTLP: every service exports to OTEL_EXPORTER_OTLP_ENDPOINT, and one job is one trace.

The receiver is a small HTTP server speaking OTLP/HTTP: it decodes each export with the
opentelemetry-proto types, as a collector would. The services are the real processes, started with
the endpoint in their environment; the job runs over the gateway's WebSocket.
"""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

from pipeline import run_job, script_pipeline

SERVICES = ("gateway", "research", "writer", "social", "illustrator", "persistence")
REQUEST = {"topic": "Rooftop solar", "platforms": ["linkedin", "x"], "research": True, "image": True}


@dataclass(frozen=True)
class ReceivedSpan:
    service: str
    name: str
    trace_id: str
    attributes: dict[str, Any]


def _value(any_value: Any) -> Any:
    return getattr(any_value, any_value.WhichOneof("value")) if any_value.WhichOneof("value") else None


class OtlpReceiver:
    """POST /v1/traces, protobuf (optionally gzip), as the OTLP/HTTP exporter sends it."""

    def __init__(self) -> None:
        self.spans: list[ReceivedSpan] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                if self.path != "/v1/traces":
                    self.send_error(404)
                    return
                receiver.add(ExportTraceServiceRequest.FromString(body))
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def add(self, request: ExportTraceServiceRequest) -> None:
        received = []
        for resource_spans in request.resource_spans:
            resource = {a.key: _value(a.value) for a in resource_spans.resource.attributes}
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    received.append(
                        ReceivedSpan(
                            service=str(resource.get("service.name")),
                            name=span.name,
                            trace_id=span.trace_id.hex(),
                            attributes={a.key: _value(a.value) for a in span.attributes},
                        )
                    )
        with self.lock:
            self.spans.extend(received)

    def snapshot(self) -> list[ReceivedSpan]:
        with self.lock:
            return list(self.spans)

    def __enter__(self) -> OtlpReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as otlp:
        yield otlp


async def test_one_job_is_one_trace_with_spans_from_every_service(
    service_runner, scripted_llm, receiver: OtlpReceiver, eventually
) -> None:
    script_pipeline(scripted_llm)
    # A short export delay: spans reach the receiver within a second of ending.
    service_runner.start(env={"OTEL_EXPORTER_OTLP_ENDPOINT": receiver.url, "OTEL_BSP_SCHEDULE_DELAY": "200"})
    watch = await run_job(service_runner, REQUEST)
    assert watch.types[-1] == "job.completed", watch.types

    def job_roots() -> list[ReceivedSpan]:
        return [
            s
            for s in receiver.snapshot()
            if s.name == "job.start" and s.attributes.get("pressroom.job_id") == watch.job_id
        ]

    (root,) = await eventually(job_roots, timeout=30)
    assert root.service == "pressroom-gateway"

    def services_in_trace() -> set[str]:
        found = {s.service for s in receiver.snapshot() if s.trace_id == root.trace_id}
        return found if found >= {f"pressroom-{name}" for name in SERVICES} else set()

    await eventually(services_in_trace, timeout=30)

    # Every span that names this job (its subjects, its id) is in that one trace.
    about_the_job = [s for s in receiver.snapshot() if watch.job_id in str(s.attributes)]
    assert len(about_the_job) > len(SERVICES)
    assert {s.trace_id for s in about_the_job} == {root.trace_id}

    # The writer's calls to the model provider are client spans of the job's trace.
    def provider_calls() -> list[ReceivedSpan]:
        return [
            s
            for s in receiver.snapshot()
            if s.trace_id == root.trace_id
            and s.service == "pressroom-writer"
            and "/v1/" in str(s.attributes.get("url.full", s.attributes.get("http.url", "")))
        ]

    assert await eventually(provider_calls, timeout=30)
