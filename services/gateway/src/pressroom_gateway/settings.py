"""Gateway settings: the shared service settings plus the HTTP listener, auth and per-client limits."""

from __future__ import annotations

from enum import StrEnum
from typing import Literal

from limits import parse
from pydantic import AliasChoices, Field, SecretStr, field_validator
from pydantic_settings import SettingsConfigDict

from pressroom_contracts.protocol import MAX_FRAME_BYTES
from pressroom_contracts.voice import check_link_template
from pressroom_runtime.settings import ServiceSettings


class ModerationMode(StrEnum):
    blocklist = "blocklist"  # the blocklist only
    openai = "openai"  # the blocklist, then OpenAI's moderation endpoint (needs OPENAI_API_KEY)


def _rate(value: str) -> str:
    try:
        parse(value)
    except ValueError:
        raise ValueError(f"{value!r} is not a rate such as '10/minute' or '100 per hour'") from None
    return value


class GatewaySettings(ServiceSettings):
    # Shared fields keep their well-known names (NATS_URL, PRESSROOM_REPLICA, …) through their aliases;
    # the gateway's own fields read PRESSROOM_GATEWAY_<NAME>.
    model_config = SettingsConfigDict(env_prefix="PRESSROOM_GATEWAY_", extra="ignore", populate_by_name=True)

    host: str = Field("127.0.0.1", description="Address the HTTP and WebSocket listener binds to.")
    port: int = Field(8000, ge=0, le=65535, description="Port of the HTTP and WebSocket listener.")
    public_url_template: str | None = Field(
        None,
        description="Public address of a post, with {slug} (e.g. https://blog.example.com/{slug}), for clients "
        "whose profile has none: fills {link} in social posts.",
    )

    @field_validator("public_url_template")
    @classmethod
    def _template(cls, value: str | None) -> str | None:
        return check_link_template(value)

    send_queue: int = Field(
        256, ge=1, description="Outgoing frames buffered per connection before it is closed as too slow."
    )
    # Capped at the protocol's limit: parse_client_frame refuses anything larger whatever we configure.
    max_frame_bytes: int = Field(
        MAX_FRAME_BYTES,
        ge=1024,
        le=MAX_FRAME_BYTES,
        description="Largest client frame answered normally, in bytes.",
    )
    ping_interval: float = Field(
        20.0,
        gt=0,
        description="The server pings every WebSocket this often (seconds); one that does not answer within "
        "ping_timeout is closed. A client that only listens stays connected as long as it answers.",
    )
    ping_timeout: float = Field(20.0, gt=0, description="Seconds a WebSocket ping may go unanswered.")
    ws: Literal["auto", "websockets", "websockets-sansio", "wsproto"] = Field(
        "auto",
        description="uvicorn's WebSocket implementation ('auto': websockets-sansio when websockets is "
        "installed); benchmarks/fanout.py --ws compares them.",
    )
    content_request_timeout: float = Field(
        60.0, gt=0, description="Seconds /content waits for its client's one request."
    )
    feed_linger: float = Field(
        2.0, ge=0, description="Seconds a job's feed outlives its last watcher (reloads, reconnects)."
    )
    feed_start_within: float = Field(
        30.0,
        ge=0,
        description="Seconds starting a job's feed is retried while NATS answers 'not now' (a stream "
        "leader election on a cluster) before its watcher is told 'unavailable'.",
    )

    # ---- who may talk to this gateway ---------------------------------------------------------------------
    allowed_hosts: str = Field(
        "127.0.0.1,localhost,::1",
        description="Comma-separated Host names this gateway answers to ('*.example.com' and '*' allowed); "
        "loopback only by default. /healthz, /readyz and /metrics answer any Host.",
    )
    allowed_origins: str = Field(
        "",
        description="Comma-separated origins (https://app.example.com) whose pages may use the gateway, "
        "besides its own origin; '*' for any.",
    )
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest HTTP request body read, in bytes.")

    # ---- auth ---------------------------------------------------------------------------------------------
    jwt_secret: SecretStr | None = Field(
        None,
        description="When set, HS256 JWTs signed with it are accepted too (sub = client id, exp required).",
    )
    auth_cache_seconds: float = Field(
        30.0,
        ge=0,
        description="Seconds a found API key is reused before the key bucket is read again. Revocation does "
        "not wait for it: the gateway watches the bucket and forgets a deleted key at once.",
    )
    page_token: SecretStr | None = Field(
        None,
        description="The token the web page at / starts with, only when served to a loopback host "
        "(`make up` sets it to the local key); unset: the page asks for an API key.",
    )
    allow_anonymous_legacy: bool = Field(
        False, description="/content without a token runs as the client 'anonymous' (original clients)."
    )

    # ---- limits -------------------------------------------------------------------------------------------
    job_rate: str = Field("10/minute", description="Jobs one client may start (moving window).")
    max_connections: int = Field(10, ge=1, description="Concurrent WebSocket connections per client.")
    connect_rate: str = Field(
        "60/minute", description="WebSocket connection attempts per IP address, counted before auth."
    )

    # ---- moderation ---------------------------------------------------------------------------------------
    moderation: ModerationMode = Field(
        ModerationMode.blocklist,
        description="blocklist (the blocklist only) or openai (the blocklist, then OpenAI's moderation "
        "endpoint; needs OPENAI_API_KEY).",
    )
    blocklist: str = Field(
        "", description="Comma-separated words or phrases refused in a topic, on top of the default list."
    )
    blocklist_defaults: bool = Field(
        True, description="Also refuse the small built-in list of abusive terms."
    )
    openai_api_key: SecretStr | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_API_KEY"),
        description="The key for OpenAI's moderation endpoint (moderation=openai).",
    )
    openai_base_url: str | None = Field(
        None,
        validation_alias=AliasChoices("OPENAI_BASE_URL"),
        description="Where the moderation endpoint is asked; unset: OpenAI itself.",
    )
    moderation_model: str = Field("omni-moderation-latest", description="The moderation model.")
    moderation_timeout: float = Field(10.0, gt=0, description="Seconds one moderation request may take.")

    @field_validator("job_rate", "connect_rate")
    @classmethod
    def _valid_rate(cls, value: str) -> str:
        return _rate(value)

    @property
    def host_names(self) -> list[str]:
        return [host.strip() for host in self.allowed_hosts.split(",") if host.strip()]

    @property
    def origins(self) -> list[str]:
        return [origin.strip() for origin in self.allowed_origins.split(",") if origin.strip()]

    @property
    def blocked_terms(self) -> list[str]:
        return [term.strip() for term in self.blocklist.split(",") if term.strip()]

    @property
    def ws_hard_limit(self) -> int:
        """Frames above max_frame_bytes get an `error` reply; frames above this drop the connection (1009)
        before they are even buffered, so a client cannot make the server hold megabytes."""
        return max(1024 * 1024, 4 * self.max_frame_bytes)
