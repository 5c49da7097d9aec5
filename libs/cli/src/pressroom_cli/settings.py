"""Which gateway and which API key: the option, its environment variable, then the local stack.

A stack started with `pressroom up` (pressroom-devstack) writes its gateway's address to
PRESSROOM_HOME/stack.json and the local client's key to PRESSROOM_HOME/api-key (PRESSROOM_HOME defaults to
./.pressroom), so next to a running `make up` no option is needed. The file names are defined here and
used by the stack, so the two cannot drift apart.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import quote, urlsplit

from .errors import UsageError

DEFAULT_GATEWAY = "http://127.0.0.1:8000"
GATEWAY_ENV = "PRESSROOM_GATEWAY_URL"
TOKEN_ENV = "PRESSROOM_API_KEY"
HOME_ENV = "PRESSROOM_HOME"
DEFAULT_HOME = ".pressroom"
STATE_FILE = "stack.json"
KEY_FILE = "api-key"


def local_home() -> Path:
    return Path(os.environ.get(HOME_ENV, "").strip() or DEFAULT_HOME).resolve()


def local_gateway() -> str | None:
    """The gateway of the stack running from PRESSROOM_HOME, if any."""
    try:
        state = json.loads((local_home() / STATE_FILE).read_text())
    except (OSError, ValueError):
        return None
    url = state.get("gateway_url") if isinstance(state, dict) else None
    return url if isinstance(url, str) and url else None


def resolve_gateway(option: str | None) -> str:
    value = (option or local_gateway() or DEFAULT_GATEWAY).strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"--gateway {value!r}: expected an http:// or https:// URL")
    return value


def resolve_token(option: str | None) -> str | None:
    if option and option.strip():
        return option.strip()
    try:
        return (local_home() / KEY_FILE).read_text().strip() or None
    except OSError:
        return None


def ws_url(gateway: str) -> str:
    parts = urlsplit(gateway)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path}/v1/ws"


def job_path(job_id: str, suffix: str = "") -> str:
    return f"/v1/jobs/{quote(job_id, safe='')}{suffix}"
