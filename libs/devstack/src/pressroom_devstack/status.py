"""The health of every piece of a running stack, read from its state file: what `pressroom status` shows.

Each check is the piece's own: NATS's JetStream health endpoint, a PostgreSQL connection, the S3 bucket,
the model server's /health, and every service replica's /healthz (the gateway on its public port). An
external NATS is checked for a connection only.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import asyncpg

from .health import http_ok
from .objectstore import S3Info, bucket_ready


@dataclass(frozen=True)
class PieceStatus:
    name: str
    where: str
    healthy: bool
    note: str = ""


def _postgres_ok(url: str) -> bool:
    async def check() -> bool:
        connection = await asyncpg.connect(url, timeout=2.0)
        try:
            return bool(await connection.fetchval("SELECT 1") == 1)
        finally:
            await connection.close()

    try:
        return asyncio.run(check())
    except (TimeoutError, OSError, asyncpg.PostgresError):
        return False


def _any_reachable(urls: str) -> bool:
    """An external NATS (one URL or a comma-separated list): does any server accept a connection?"""
    for url in urls.split(","):
        parts = urlsplit(url.strip())
        try:
            with socket.create_connection((parts.hostname or "", parts.port or 4222), timeout=1.0):
                return True
        except OSError:
            continue
    return False


def _origin(state: Mapping[str, Any], piece: str, embedded: bool = True) -> str:
    """ "embedded" or "external", and what supervision did to an embedded server that died."""
    if not embedded:
        return "external"
    supervised = (state.get("servers") or {}).get(piece) or {}
    restarts = int(supervised.get("restarts", 0))
    if supervised.get("given_up"):
        return f"embedded, given up after {restarts} restart(s)"
    return "embedded" + (f", restarted {restarts}x" if restarts else "")


def check_pieces(state: Mapping[str, Any]) -> list[PieceStatus]:
    """One line per server and per service replica, each checked now."""
    started = set(state.get("started", []))
    pieces: list[PieceStatus] = []
    nats_health = state.get("nats_health_urls") or []
    urls = state["nats_url"].split(",")
    if not nats_health:
        pieces.append(PieceStatus("NATS", state["nats_url"], _any_reachable(state["nats_url"]), "external"))
    for i, health in enumerate(nats_health):
        name, key = ("NATS", "nats") if len(nats_health) == 1 else (f"NATS node-{i}", f"nats node-{i}")
        pieces.append(
            PieceStatus(name, urls[i] if i < len(urls) else "", http_ok(health), _origin(state, key))
        )
    pieces.append(
        PieceStatus(
            "PostgreSQL",
            state["database_url"].split("?", 1)[0],
            _postgres_ok(state["database_url"]),
            _origin(state, "postgres", "postgres" in started),
        )
    )
    s3 = S3Info(**state["s3"])
    pieces.append(
        PieceStatus(
            "S3", f"{s3.endpoint} bucket {s3.bucket}", bucket_ready(s3), _origin(state, "s3", "s3" in started)
        )
    )
    model_health = state.get("model_health_url")
    if model_health:
        pieces.append(
            PieceStatus(
                "Model", state.get("llm_base_url") or "", http_ok(model_health), _origin(state, "model")
            )
        )
    for name, replica in sorted(state.get("processes", {}).items()):
        restarts = int(replica.get("restarts", 0))
        note = f"pid {replica.get('pid')}" + (f", restarted {restarts}x" if restarts else "")
        pieces.append(PieceStatus(name, replica["health_url"], http_ok(replica["health_url"]), note))
    return pieces
