"""Pressroom gateway: FastAPI WebSocket fan-out of stage events."""

from .app import create_app
from .settings import GatewaySettings

__all__ = ["GatewaySettings", "create_app"]
