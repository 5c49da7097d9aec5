"""Expected failures: one readable line on stderr and an exit status a script can act on."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import IntEnum

import typer
from rich.console import Console
from rich.text import Text

stderr = Console(stderr=True)


class ExitCode(IntEnum):
    OK = 0
    NOT_DONE = 1  # the job failed or was cancelled, or the gateway refused the request
    USAGE = 2  # invalid options (also click's own status for a bad command line)
    UNREACHABLE = 3  # the gateway (or what it needs) cannot be reached
    UNAUTHENTICATED = 4  # the gateway refused the API key
    INTERRUPTED = 130  # Ctrl-C


class ClientError(Exception):
    """A failure to explain in one line, without a traceback."""

    exit_code = ExitCode.NOT_DONE

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class UsageError(ClientError):
    exit_code = ExitCode.USAGE


class Unreachable(ClientError):
    exit_code = ExitCode.UNREACHABLE


class AuthRefused(ClientError):
    exit_code = ExitCode.UNAUTHENTICATED

    def __init__(self, reason: str = "") -> None:
        super().__init__(
            "the gateway refused the API key"
            + (f" ({reason})" if reason else "")
            + "; pass one with --token or PRESSROOM_API_KEY (`pressroom keys create NAME` makes one)"
        )


@contextlib.contextmanager
def readable_errors() -> Iterator[None]:
    """Every ClientError becomes `error: …` on stderr and its exit status."""
    try:
        yield
    except ClientError as exc:
        stderr.print(Text(f"error: {exc.message}", style="red"), soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None


def reason(exc: BaseException) -> str:
    """A network error in a few words."""
    if isinstance(exc, ConnectionRefusedError) or "Connect call failed" in str(exc):
        return "connection refused"
    return str(exc).strip() or type(exc).__name__
