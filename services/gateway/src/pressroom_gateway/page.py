"""The web page served by the gateway: `GET /` and its static assets under `/static/`.

Plain HTML, one JavaScript module and one stylesheet, shipped inside the package: no build step and
nothing loaded from another origin. The page talks to the same gateway over `/v1/ws` and the REST API.

When PRESSROOM_GATEWAY_PAGE_TOKEN is set (the embedded `make up` sets it to the local key), the page
carries it in `<meta name="pressroom-token">` and is usable at once, but only when it is served to a
loopback host (127.0.0.1, localhost, ::1): anywhere else it asks for an API key and keeps it in the
browser's localStorage, as it does without a page token.
"""

from __future__ import annotations

import html
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse

from .deps import get_services
from .guards import host_name

STATIC_DIR = Path(__file__).parent / "static"
TOKEN_PLACEHOLDER = "{{PRESSROOM_TOKEN}}"

_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".ico": "image/x-icon",
    ".png": "image/png",
}

# Scripts and styles only from the gateway itself; images also from the object store (presigned URLs
# point at another origin). 'self' covers the same-origin WebSocket in current browsers; ws:/wss: are
# listed for older ones.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self' data: blob: http: https:",
        "connect-src 'self' ws: wss:",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
        "form-action 'self'",
    ]
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

router = APIRouter()


@lru_cache(maxsize=1)
def _template() -> str:
    return (STATIC_DIR / "index.html").read_text(encoding="utf-8")


def page_token(request: Request) -> str:
    """The token the page starts with: the gateway's page_token (PRESSROOM_GATEWAY_PAGE_TOKEN), if set."""
    token = get_services(request).settings.page_token
    return token.get_secret_value() if token is not None else ""


def render_page(token: str) -> str:
    # Escaped for an attribute value: a token never contains markup, but nothing here trusts that.
    return _template().replace(TOKEN_PLACEHOLDER, html.escape(token, quote=True))


LOOPBACK_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})


def served_locally(request: Request) -> bool:
    return host_name(request.headers.get("host", "")) in LOOPBACK_NAMES


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def index(request: Request) -> HTMLResponse:
    token = page_token(request) if served_locally(request) else ""
    return HTMLResponse(render_page(token), headers=SECURITY_HEADERS)


@lru_cache(maxsize=1)
def _assets() -> dict[str, Path]:
    """Every file under static/ by its relative path: only these names are ever served."""
    return {
        path.relative_to(STATIC_DIR).as_posix(): path
        for path in STATIC_DIR.rglob("*")
        if path.is_file() and path.name != "index.html"
    }


@router.get("/static/{name:path}", include_in_schema=False)
async def static(name: str) -> FileResponse:
    path = _assets().get(name)
    if path is None:
        raise HTTPException(status_code=404, detail="not found")
    media_type = _MEDIA_TYPES.get(path.suffix, "application/octet-stream")
    headers = {"X-Content-Type-Options": "nosniff", "Cache-Control": "no-cache"}
    return FileResponse(path, media_type=media_type, headers=headers)
