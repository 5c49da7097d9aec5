"""The `pressroom` command: the client commands, and those other installed packages add.

A package adds commands through the "pressroom.commands" entry-point group: each entry names a Typer app
whose commands join the top level (pressroom-devstack adds `up`, `status`, `env` and `keys`). A package
whose commands cannot be loaded is reported and left out; the client commands still work.
"""

from __future__ import annotations

import sys
from importlib.metadata import entry_points

import typer

from . import jobs
from .errors import stderr
from .generate import generate

COMMANDS_GROUP = "pressroom.commands"


def build_app(*, plugins: bool = True) -> typer.Typer:
    app = typer.Typer(
        name="pressroom",
        help="Pressroom from the command line: generate content and manage your jobs through a gateway.",
        epilog="Exit status: 0 done, 1 the job failed or was refused, 2 invalid options, "
        "3 the gateway cannot be reached, 4 the API key was refused, 130 interrupted.",
        no_args_is_help=True,
    )
    app.command()(generate)
    app.add_typer(jobs.app, name="jobs")
    if plugins:
        for entry in entry_points(group=COMMANDS_GROUP):
            try:
                commands = entry.load()
            except Exception as exc:  # a broken optional package must not take the client down
                stderr.print(f"[yellow]pressroom: the {entry.name!r} commands are unavailable: {exc}[/]")
                continue
            app.add_typer(commands)
    return app


CLIENT_COMMANDS = ("generate", "jobs")


def main() -> None:
    # The client's own commands do not import the other packages' (the stack's pull in the runtime):
    # `pressroom generate` starts in about half the time where pressroom-devstack is installed.
    build_app(plugins=sys.argv[1:2] not in ([name] for name in CLIENT_COMMANDS))()
