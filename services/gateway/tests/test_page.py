"""The web page and its assets (the browser test in tests/test_browser.py drives it for real)."""

from __future__ import annotations

import re

from pressroom_gateway.page import STATIC_DIR


async def test_the_page_carries_the_page_token_escaped(gateway_factory):
    async with gateway_factory(page_token='prk_abc"><script>x</script>') as gw:
        response = await gw.get("/")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert (
        '<meta name="pressroom-token" content="prk_abc&quot;&gt;&lt;script&gt;x&lt;/script&gt;">'
        in response.text
    )
    assert "<script>x</script>" not in response.text
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "object-src 'none'" in policy
    assert response.headers["cache-control"] == "no-store"


async def test_without_a_page_token_the_meta_tag_is_empty(gateway):
    assert gateway.settings.page_token is None
    response = await gateway.get("/")
    assert '<meta name="pressroom-token" content="">' in response.text


async def test_assets_are_served_with_their_types_and_nothing_else(gateway):
    script = await gateway.get("/static/app.js")
    assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
    style = await gateway.get("/static/app.css")
    assert style.status_code == 200 and style.headers["content-type"].startswith("text/css")
    for path in ("/static/index.html", "/static/../page.py", "/static/%2e%2e/page.py", "/static/nope.js"):
        assert (await gateway.get(path)).status_code == 404, path


def test_the_page_loads_nothing_from_another_origin():
    """No CDN: there is no network at run time."""
    files = sorted(path for path in STATIC_DIR.rglob("*") if path.is_file())
    # The check below means something only if it reads the page and its assets.
    assert {"index.html", "app.js", "app.css"} <= {path.name for path in files}, files
    for path in files:
        text = path.read_text(encoding="utf-8")
        assert not re.search(r"(src|href)=\"(https?:)?//", text), path
        assert not re.search(r"import\s.*from\s+[\"']https?:", text), path
        assert "@import" not in text, path
