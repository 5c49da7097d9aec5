"""`pressroom keys …`: the gateway's API keys, written straight into their NATS key-value bucket.

An operator's command, not a client's: it needs the NATS credentials and pressroom_runtime.apikeys, so
it ships with the embedded stack rather than with the contracts-only client (pressroom-cli).
"""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import nats
import typer
from nats.aio.client import Client
from nats.errors import NoServersError
from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from pressroom_cli.errors import ClientError, Unreachable, UsageError, readable_errors, reason, stderr
from pressroom_runtime import apikeys
from pressroom_runtime.logs import configure_logging

from .config import StackConfig
from .stack import read_state

app = typer.Typer(help="API keys of the gateway (stored hashed in NATS).", no_args_is_help=True)
console = Console()
T = TypeVar("T")

NatsOption = Annotated[
    str | None, typer.Option("--nats", envvar="NATS_URL", help="NATS URL (default: the running stack's).")
]


def resolve_nats(option: str | None) -> str:
    state = read_state(StackConfig.from_env().paths.state_file) or {}
    url = option or state.get("nats_admin_url") or state.get("nats_url")  # managing keys takes the admin
    if not url:
        raise UsageError("no NATS to talk to: pass --nats, set NATS_URL or start the stack (`pressroom up`)")
    return str(url)


async def _with_nats(url: str, action: Callable[[Client], Awaitable[T]]) -> T:
    async def quiet(exc: Exception) -> None:
        """nats-py logs every failed attempt with a traceback; the one error we raise says it all."""

    try:
        async with asyncio.timeout(10):
            nc = await nats.connect(url, connect_timeout=3, allow_reconnect=False, error_cb=quiet)
    except (NoServersError, OSError, TimeoutError) as exc:
        raise Unreachable(f"cannot reach NATS at {url} ({reason(exc)})") from None
    try:
        return await action(nc)
    except (apikeys.KeyStoreMissing, ValueError) as exc:
        raise ClientError(str(exc)) from None
    finally:
        await nc.close()


def run(nats_url: str | None, action: Callable[[Client], Awaitable[T]]) -> T:
    # stdout carries only what the command prints (a new key, say); library logs go to stderr, warnings up.
    configure_logging(os.environ.get("PRESSROOM_LOG_LEVEL", "WARNING"), "console", service="keys")
    return asyncio.run(_with_nats(resolve_nats(nats_url), action))


@app.command("create")
def create(
    name: Annotated[str, typer.Argument(help="The client the key is for (its jobs are its own).")],
    nats_url: NatsOption = None,
) -> None:
    """Create an API key. The key is shown once; only its hash is stored."""
    with readable_errors():
        token, record = run(nats_url, lambda nc: apikeys.create_key(nc, name))
        stderr.print(
            f"created a key for {escape(record.name)} ({record.client_id}); keep it, it is not shown again:"
        )
        sys.stdout.write(token + "\n")


@app.command("list")
def list_keys(nats_url: NatsOption = None) -> None:
    """List the API keys (never the keys themselves)."""
    with readable_errors():
        records = run(nats_url, apikeys.list_keys)
        if not records:
            console.print("no keys")
            return
        rows = [record.model_dump(mode="json") for record in records]
        table = Table()
        for column in rows[0]:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text("" if value is None else str(value)) for value in row.values()))
        console.print(table)


@app.command("revoke")
def revoke(
    key: Annotated[
        str, typer.Argument(help="The client id (or its unique name) that `pressroom keys list` shows.")
    ],
    nats_url: NatsOption = None,
) -> None:
    """Revoke a client's API keys: the gateway refuses them from then on (within its cache time)."""

    async def revoke_one(nc: Client) -> str:
        records = await apikeys.list_keys(nc)
        ids = {r.client_id for r in records if r.client_id == key} or {
            r.client_id for r in records if r.name == key
        }
        if not ids:
            raise ClientError(f"no key {key!r}")
        if len(ids) > 1:
            raise ClientError(f"{len(ids)} clients are named {key!r}; revoke one by its client id")
        (client_id,) = ids
        await apikeys.revoke(nc, client_id)
        return client_id

    with readable_errors():
        console.print(f"revoked {escape(run(nats_url, revoke_one))}")
