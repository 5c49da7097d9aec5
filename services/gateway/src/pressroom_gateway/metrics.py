"""The gateway's Prometheus metrics, in the process registry served at GET /metrics (with the runtime's).

Labels are bounded on purpose: an endpoint, a frame type or an error code, never a job or client id.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge

WS_CONNECTIONS = Counter(
    "pressroom_gateway_ws_connections_total", "WebSocket connections accepted, by endpoint.", ["endpoint"]
)
WS_OPEN = Gauge("pressroom_gateway_ws_open_connections", "WebSocket connections open now.", ["endpoint"])
WS_FRAMES = Counter(
    "pressroom_gateway_ws_frames_total",
    "Client frames received on /v1/ws, by type ('invalid' when it could not be parsed).",
    ["type"],
)
ERRORS = Counter(
    "pressroom_gateway_errors_total", "Errors answered to clients (frames and HTTP), by code.", ["code"]
)
JOBS_STARTED = Counter("pressroom_gateway_jobs_started_total", "Jobs started (job.requested published).")
FEED_START_RETRIES = Counter(
    "pressroom_gateway_feed_start_retries_total",
    "Job feed starts retried because the bus answered 'not now' (e.g. a stream leader election).",
)
