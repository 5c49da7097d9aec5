"""`pressroom up|status|env|keys`: the embedded stack's commands. A thin layer over stack.Stack.

pressroom-cli owns the `pressroom` command; this Typer app joins it through the "pressroom.commands"
entry point (see pyproject.toml), so the client and the stack share one command when both are installed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import shlex
import signal
import sys
import time
from collections.abc import Iterator
from types import FrameType
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table
from rich.text import Text

from pressroom_contracts.access import USERS, inbox_prefix
from pressroom_contracts.parties import READER
from pressroom_runtime.logs import configure_logging

from . import keys
from .config import StackConfig
from .errors import StartupError
from .natsauth import NatsUsers
from .services import SERVICES
from .stack import Stack, StackInfo, read_state
from .status import check_pieces

app = typer.Typer(help="Pressroom's embedded stack: no keys, no network.", no_args_is_help=True)
app.add_typer(keys.app, name="keys")
console = Console()
errors = Console(stderr=True)


def parse_replicas(values: list[str]) -> dict[str, int]:
    """`writer=2`, also comma-separated: `writer=2,social=3`."""
    counts: dict[str, int] = {}
    for item in (part for value in values for part in value.split(",") if part.strip()):
        name, sep, number = item.partition("=")
        name = name.strip()
        if not sep or name not in SERVICES or not number.strip().isdigit() or int(number) < 1:
            raise typer.BadParameter(f"{item!r}: expected NAME=N with NAME one of {', '.join(SERVICES)}")
        counts[name] = int(number)
    return counts


@contextlib.contextmanager
def _sigterm_as_interrupt() -> Iterator[None]:
    """SIGTERM takes the same path as Ctrl-C, so the finally block stops every child."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _shielded_stop(stack: Stack) -> None:
    # A second Ctrl-C must not cut the clean-up short and leave orphans behind.
    old_int = signal.signal(signal.SIGINT, signal.SIG_IGN)
    old_term = signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        stack.stop()
    finally:
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)


def info_table(info: StackInfo | dict[str, Any]) -> Table:
    data = info if isinstance(info, dict) else info.__dict__
    started = set(data.get("started", []))
    s3 = data["s3"]
    rows = [
        ("NATS", data["nats_url"], "nats" in started),
        ("PostgreSQL", data["database_url"], "postgres" in started),
        (
            "S3",
            f"{'https' if s3.get('secure') else 'http'}://{s3['endpoint']}  bucket {s3['bucket']}",
            "s3" in started,
        ),
        (
            "Model",
            f"{data['llm_base_url'] or 'OpenAI'}  ({data.get('llm_model') or 'default model'})",
            "model" in started,
        ),
        ("Gateway", data.get("gateway_url") or "-", "services" in started),
        ("API key", data.get("api_key") or "-", False),
        ("Knowledge", data["knowledge_dir"], False),
        ("Logs", data["log_dir"], False),
    ]
    table = Table(title=f"Pressroom stack ({data['home']})")
    table.add_column("piece")
    table.add_column("where")
    table.add_column("")
    for name, where, embedded in rows:
        table.add_row(name, where, "embedded" if embedded else "")
    if data.get("replicas"):
        table.add_row("Services", ", ".join(f"{k} x{v}" for k, v in data["replicas"].items()), "")
    return table


@app.command()
def up(
    replicas: Annotated[
        list[str], typer.Option("--replicas", "-r", help="replicas per service, e.g. writer=2 (repeatable)")
    ] = [],  # noqa: B006 - typer reads the default
    no_services: Annotated[bool, typer.Option("--no-services", help="only the infrastructure")] = False,
    nats_cluster: Annotated[
        int | None,
        typer.Option(
            "--nats-cluster",
            min=1,
            max=5,
            help="embedded NATS as a JetStream cluster of N servers on loopback (3: the stream is replicated)",
        ),
    ] = None,
) -> None:
    """Start everything (reusing the data in PRESSROOM_HOME), print where it is, run until Ctrl-C."""
    counts = parse_replicas(replicas)
    config = StackConfig.from_env()
    if nats_cluster is not None:
        config = dataclasses.replace(config, nats_cluster=nats_cluster)
    configure_logging(config.environ.get("PRESSROOM_LOG_LEVEL", "INFO"), "console", service="devstack")
    for chatty in ("httpx", "pgserver"):  # every health poll, every pg_ctl call
        logging.getLogger(chatty).setLevel(logging.WARNING)
    stack = Stack(config)
    with _sigterm_as_interrupt():
        try:
            with console.status("starting the stack…"):
                info = stack.start(services=not no_services, replicas=counts)
            console.print(info_table(info))
            console.print("Running. Ctrl-C stops everything.")
            _watch(stack)
        except KeyboardInterrupt:
            console.print("stopping…")
        except StartupError as exc:
            console.print("[red]start-up failed[/]:", Text(str(exc)))
            raise typer.Exit(1) from None
        finally:
            _shielded_stop(stack)
    console.print("stopped.")


def _watch(stack: Stack) -> None:
    """Until a signal: restarts any embedded server that dies and any service that exits (with backoff)
    and says so; a server given up on is said in red."""
    while True:
        time.sleep(0.5)
        for note in stack.heal():
            console.print(Text(note, style="red" if "giving up" in note else "yellow"))


@app.command()
def status() -> None:
    """Show every piece of the stack started from PRESSROOM_HOME with its health; exit 1 if any is down."""
    config = StackConfig.from_env()
    state = read_state(config.paths.state_file)
    if state is None:
        console.print(f"no stack running from {config.paths.home}")
        raise typer.Exit(1)
    pieces = check_pieces(state)
    table = Table(title=f"Pressroom stack ({state['home']}, pid {state['pid']})")
    for column in ("piece", "where", "health", ""):
        table.add_column(column)
    for piece in pieces:
        health = "[green]up[/]" if piece.healthy else "[red]down[/]"
        table.add_row(piece.name, piece.where, health, piece.note)
    console.print(table)
    if state.get("api_key"):
        console.print(f"API key: {state['api_key']}   logs: {state['log_dir']}")
    if not all(piece.healthy for piece in pieces):
        raise typer.Exit(1)


@app.command()
def env(
    user: Annotated[
        str,
        typer.Option(
            "--as",
            help="the NATS user whose credentials to print: reader (read-only, for other systems), a "
            "service's name (to run that service by hand) or admin",
        ),
    ] = READER.name,
) -> None:
    """Print the running stack's addresses and credentials as shell exports: what an outside subscriber
    (or a service run by hand) needs."""
    config = StackConfig.from_env()
    state = read_state(config.paths.state_file)
    if state is None:
        errors.print(f"no stack running from {config.paths.home}", style="red")
        raise typer.Exit(1)
    if user not in USERS:
        errors.print(f"unknown NATS user {user!r}; one of {', '.join(USERS)}", style="red")
        raise typer.Exit(2)
    s3 = state["s3"]
    values = {
        "PRESSROOM_GATEWAY_URL": state.get("gateway_url") or "",
        "NATS_URL": state["nats_url"],
        "DATABASE_URL": state["database_url"],
        "S3_ENDPOINT": s3["endpoint"],
        "S3_ACCESS_KEY": s3["access_key"],
        "S3_SECRET_KEY": s3["secret_key"],
        "S3_BUCKET": s3["bucket"],
        "S3_SECURE": "true" if s3.get("secure") else "false",
        "PRESSROOM_KNOWLEDGE_DIR": state["knowledge_dir"],
    }
    if "nats" in state.get("started", []):
        users = NatsUsers.load_or_create(config.paths.nats_users)
        values.update(users.service_env(user), NATS_INBOX_PREFIX=inbox_prefix(user))
    if state.get("llm_base_url"):
        values["OPENAI_BASE_URL"] = state["llm_base_url"]
    if "model" in state.get("started", []):
        values.update(
            OPENAI_API_KEY="local", PRESSROOM_LLM_MODEL=state["llm_model"], PRESSROOM_LLM_PROFILE="completion"
        )
    for key, value in values.items():
        sys.stdout.write(f"export {key}={_quote(value)}\n")


def _quote(value: str) -> str:
    return shlex.quote(str(value))


def main() -> None:  # pragma: no cover - `python -m pressroom_devstack.cli`: the whole `pressroom` command
    from pressroom_cli.app import main as pressroom

    pressroom()


if __name__ == "__main__":
    main()
