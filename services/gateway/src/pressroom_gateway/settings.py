"""Gateway settings: the shared service settings plus the HTTP listener and per-connection limits."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from pressroom_contracts.protocol import MAX_FRAME_BYTES
from pressroom_runtime.settings import ServiceSettings


class GatewaySettings(ServiceSettings):
    # Shared fields keep their well-known names (NATS_URL, PRESSROOM_REPLICA, …) through their aliases;
    # the gateway's own fields read PRESSROOM_GATEWAY_<NAME>.
    model_config = SettingsConfigDict(env_prefix="PRESSROOM_GATEWAY_", extra="ignore", populate_by_name=True)

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=0, le=65535)
    send_queue: int = Field(
        256, ge=1, description="Outgoing frames buffered per connection before it is closed as too slow."
    )
    # Capped at the protocol's limit: parse_client_frame refuses anything larger whatever we configure.
    max_frame_bytes: int = Field(
        MAX_FRAME_BYTES, ge=1024, le=MAX_FRAME_BYTES, description="Largest client frame answered normally."
    )

    @property
    def ws_hard_limit(self) -> int:
        """Frames above max_frame_bytes get an `error` reply; frames above this drop the connection (1009)
        before they are even buffered, so a client cannot make the server hold megabytes."""
        return max(1024 * 1024, 4 * self.max_frame_bytes)
