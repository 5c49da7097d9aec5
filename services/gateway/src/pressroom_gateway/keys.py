"""API keys from inside the gateway's image, where the `pressroom` CLI is not installed:

    python -m pressroom_gateway.keys create "my app"     # prints the token once
    python -m pressroom_gateway.keys list
    python -m pressroom_gateway.keys revoke client-…

It reads NATS_URL like the gateway itself, and connects as NATS_USER / NATS_PASSWORD, which must be the
`admin` user: no service may write the key bucket (compose: `docker compose --profile tools run --rm keys
create "my app"`; Kubernetes: docs/operations.md).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Sequence

import nats
import nats.errors

from pressroom_contracts.access import ADMIN
from pressroom_runtime import apikeys
from pressroom_runtime.broker import nats_servers
from pressroom_runtime.logs import configure_logging
from pressroom_runtime.settings import ServiceSettings


async def _run(args: argparse.Namespace, settings: ServiceSettings) -> int:
    async def quiet(_: Exception) -> None:  # the failure is raised and reported once, below
        return None

    # A one-shot command: no reconnects, so an unreachable bus is an error at once.
    password = settings.nats_password
    nc = await nats.connect(
        nats_servers(settings.nats_url),
        user=settings.nats_user,
        password=password.get_secret_value() if password else None,
        connect_timeout=5,
        allow_reconnect=False,
        max_reconnect_attempts=1,
        reconnect_time_wait=0.2,
        error_cb=quiet,
    )
    try:
        if args.command == "create":
            token, record = await apikeys.create_key(nc, args.name)
            print(f"client {record.client_id} ({record.name}); the key is shown once:", file=sys.stderr)
            print(token)
        elif args.command == "list":
            for record in await apikeys.list_keys(nc):
                print(f"{record.client_id}\t{record.name}\t{record.created_at.isoformat()}")
        elif not await apikeys.revoke(nc, args.client_id):
            print(f"no key belongs to {args.client_id}", file=sys.stderr)
            return 1
        return 0
    finally:
        await nc.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pressroom_gateway.keys", description=__doc__.split("\n")[0]
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("create", help="a new client and its key").add_argument("name", help="what it is for")
    commands.add_parser("list", help="every client with a key")
    commands.add_parser("revoke", help="delete every key of a client").add_argument("client_id")
    args = parser.parse_args(argv)
    settings = ServiceSettings()
    # Logs go to stderr, so that stdout carries only the token (or the list) for scripts.
    configure_logging(settings.log_level, settings.log_format, service="keys", replica=settings.replica)
    try:
        return asyncio.run(_run(args, settings))
    except (apikeys.KeyStoreMissing, ValueError, OSError, nats.errors.Error) as exc:
        hint = ""
        if settings.nats_user not in (None, ADMIN) and isinstance(exc, nats.errors.Error):
            # The server drops a service user's writes to the key bucket: the client only sees a timeout.
            hint = f" (NATS_USER is {settings.nats_user!r}: managing keys takes the {ADMIN!r} user)"
        print(f"error: {exc}{hint}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
