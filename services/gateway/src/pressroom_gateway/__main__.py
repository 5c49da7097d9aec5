"""`python -m pressroom_gateway`: serve the gateway on PRESSROOM_GATEWAY_HOST / PRESSROOM_GATEWAY_PORT."""

from __future__ import annotations

import uvicorn

from pressroom_runtime import gcpolicy
from pressroom_runtime.logs import configure_logging

from .app import create_app, server_config
from .settings import GatewaySettings


def main() -> None:
    settings = GatewaySettings()
    configure_logging(settings.log_level, settings.log_format, service="gateway", replica=settings.replica)
    server = uvicorn.Server(server_config(create_app(settings), settings))
    gcpolicy.tune()
    server.run()


if __name__ == "__main__":
    main()
