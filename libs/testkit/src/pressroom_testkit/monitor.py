"""What nats-server itself sees, from its HTTP monitoring endpoints (/connz, /jsz): a test's view of a
client's subscriptions and consumers that relies on the server's public API, not on a client library's
internals."""

from __future__ import annotations

from typing import Any

import httpx


class NatsMonitor:
    """`NatsMonitor(nats_server.monitor_url)`; `client_id` is what `nc.client_id` says of a connection."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _get(self, path: str, **params: Any) -> Any:
        response = httpx.get(f"{self.url}{path}", params=params, timeout=5)
        response.raise_for_status()
        return response.json()

    def subscriptions(self, client_id: int) -> list[str]:
        """The subjects the connection is subscribed to (one entry per subscription)."""
        connections = self._get("/connz", cid=client_id, subs="detail")["connections"] or []
        return [sub["subject"] for conn in connections for sub in conn.get("subscriptions_list_detail") or []]

    def consumers(self, stream: str) -> list[dict[str, Any]]:
        """The configuration of each consumer of `stream` (durable and ephemeral alike)."""
        report = self._get("/jsz", consumers="true", config="true")
        return [
            consumer.get("config") or {}
            for account in report.get("account_details") or []
            for detail in account.get("stream_detail") or []
            if detail.get("name") == stream
            for consumer in detail.get("consumer_detail") or []
        ]
