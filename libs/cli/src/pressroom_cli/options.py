"""Options every gateway command takes."""

from __future__ import annotations

from typing import Annotated

import typer

from .settings import GATEWAY_ENV, TOKEN_ENV

GatewayOption = Annotated[
    str | None,
    typer.Option(
        "--gateway",
        envvar=GATEWAY_ENV,
        help="Gateway URL (default: the running local stack's, else http://127.0.0.1:8000).",
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token", envvar=TOKEN_ENV, help="API key (default: the local stack's key).", show_default=False
    ),
]
JobIdArgument = Annotated[str, typer.Argument(help="The job's id.", show_default=False)]
