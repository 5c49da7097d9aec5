"""The API's documentation, served by the gateway itself with nothing fetched from another site.

- `/docs` (Swagger UI) and `/redoc` (ReDoc) for the REST API, from the assets the `fastapi-offline`
  package ships.
- `/asyncapi`: the event catalogue (docs/events.md), the AsyncAPI document built from the contracts
  (`pressroom_contracts.catalog`: the content of libs/contracts/catalog/asyncapi.json, also served at
  `/asyncapi.json`), rendered in the browser by the `<asyncapi-viewer>` web component, whose built files
  ship inside the `asyncapi-viewer` package.

Each page carries a Content-Security-Policy that lets it load only from the gateway: ReDoc's bundle
hard-codes a logo on Redocly's CDN, which the browser then does not fetch. Every URL on the pages is
relative, so they also work behind a proxy that mounts the gateway under a path.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import fastapi_offline
from asyncapi_viewer import assets as viewer
from fastapi import APIRouter, HTTPException
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import FileResponse, HTMLResponse, Response

from pressroom_contracts.catalog import build_catalog, render

ASSETS_PATH = "/docs-assets"
OPENAPI_URL = "openapi.json"
TITLE = "Pressroom gateway"

_OFFLINE = Path(fastapi_offline.__file__).with_name("static")
# Only these files are served, by name.
ASSETS: dict[str, Path] = {
    **{name: _OFFLINE / name for name in ("swagger-ui-bundle.js", "swagger-ui.css", "redoc.standalone.js")},
    "favicon.png": _OFFLINE / "favicon.png",
    **{name: viewer.STATIC_DIR / name for name in (viewer.VIEWER_MODULE, viewer.VIEWER_THEME)},
}
_MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".png": "image/png",
}

# Swagger UI and ReDoc start from inline scripts and style elements of their own; ReDoc searches in a
# worker made from a blob.
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'self'",
        "script-src 'self' 'unsafe-inline'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "worker-src 'self' blob:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "frame-ancestors 'none'",
    ]
)
HEADERS = {"Content-Security-Policy": CONTENT_SECURITY_POLICY, "X-Content-Type-Options": "nosniff"}

CATALOG_PAGE = f"""<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <title>Pressroom events (AsyncAPI)</title>
  <link rel="icon" href=".{ASSETS_PATH}/favicon.png">
  <script type="module" src=".{ASSETS_PATH}/{viewer.VIEWER_MODULE}"></script>
  <link rel="stylesheet" href=".{ASSETS_PATH}/{viewer.VIEWER_THEME}">
</head>
<body>
  <asyncapi-viewer src="asyncapi.json" sidebar></asyncapi-viewer>
</body>
</html>
"""

router = APIRouter(include_in_schema=False)


def _page(response: HTMLResponse) -> HTMLResponse:
    response.headers.update(HEADERS)
    return response


@router.get("/docs")
async def swagger_ui() -> HTMLResponse:
    return _page(
        get_swagger_ui_html(
            openapi_url=OPENAPI_URL,
            title=f"{TITLE} - Swagger UI",
            swagger_js_url=f".{ASSETS_PATH}/swagger-ui-bundle.js",
            swagger_css_url=f".{ASSETS_PATH}/swagger-ui.css",
            swagger_favicon_url=f".{ASSETS_PATH}/favicon.png",
            # Swagger UI asks an online validator for a badge unless told not to.
            swagger_ui_parameters={"validatorUrl": None},
        )
    )


@router.get("/redoc")
async def redoc() -> HTMLResponse:
    return _page(
        get_redoc_html(
            openapi_url=OPENAPI_URL,
            title=f"{TITLE} - ReDoc",
            redoc_js_url=f".{ASSETS_PATH}/redoc.standalone.js",
            redoc_favicon_url=f".{ASSETS_PATH}/favicon.png",
            with_google_fonts=False,
        )
    )


@router.get("/asyncapi")
async def catalog_page() -> HTMLResponse:
    return _page(HTMLResponse(CATALOG_PAGE))


@lru_cache(maxsize=1)
def catalog_json() -> bytes:
    return render(build_catalog()).encode()


@router.get("/asyncapi.json")
async def catalog() -> Response:
    return Response(catalog_json(), media_type="application/json")


@router.get(ASSETS_PATH + "/{name}")
async def asset(name: str) -> FileResponse:
    path = ASSETS.get(name)
    if path is None:
        raise HTTPException(status_code=404, detail="not found")
    headers = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
    return FileResponse(path, media_type=_MEDIA_TYPES[path.suffix], headers=headers)
