"""Errors that tell the developer what failed and where to look."""

from __future__ import annotations

from pathlib import Path


class StartupError(RuntimeError):
    """A piece of the stack did not start or did not become healthy."""

    def __init__(self, piece: str, reason: str, log_path: Path | None = None) -> None:
        self.piece = piece
        self.reason = reason
        self.log_path = log_path
        message = f"{piece}: {reason}"
        if log_path is not None:
            message += f"\n  log: {log_path}{_tail(log_path)}"
        super().__init__(message)


def _tail(path: Path, lines: int = 20) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return ""
    if not text:
        return ""
    return "\n  last lines:\n    " + "\n    ".join(text)
