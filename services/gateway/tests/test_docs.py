"""The documentation pages in headless Chromium with the network off: every request that would leave the
machine is blocked and recorded, and none may be attempted. Swagger UI (/docs) and ReDoc (/redoc) show
every operation of the gateway's OpenAPI document; the event catalogue (/asyncapi) shows every event
type and every service's operations."""

from __future__ import annotations

import json
from typing import Any

from pressroom_contracts.catalog import build_catalog, render
from pressroom_contracts.events import EVENT_TYPES
from pressroom_contracts.parties import SERVICES
from pressroom_testkit.browser import offline

TIMEOUT_MS = 60_000
# The text an element renders, its shadow roots included (the viewer renders into one).
SHOWN_TEXT = """(element) => {
  const parts = [];
  const walk = (node) => {
    if (node.shadowRoot) walk(node.shadowRoot);
    for (const child of node.childNodes) {
      if (child.nodeType === Node.TEXT_NODE) parts.push(child.textContent);
      else if (child.nodeName !== "SCRIPT" && child.nodeName !== "STYLE") walk(child);
    }
  };
  walk(element);
  return parts.join("");
}"""


async def _open(browser: Any, url: str) -> tuple[Any, list[str], list[str]]:
    """A page at `url` with the network off: (page, blocked requests, page errors)."""
    context = await browser.new_context(viewport={"width": 1280, "height": 1400})
    blocked = await offline(context)
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    await page.goto(url, wait_until="networkidle")
    return page, blocked, errors


def _operations(openapi: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(method, path, operationId) of every operation."""
    methods = {"get", "post", "put", "patch", "delete"}
    return [
        (method.upper(), path, operation["operationId"])
        for path, item in openapi["paths"].items()
        for method, operation in item.items()
        if method in methods
    ]


async def test_swagger_ui_shows_every_operation_offline(gateway, browser):
    openapi = (await gateway.get("/openapi.json")).json()
    operations = {(method, path) for method, path, _ in _operations(openapi)}
    assert len(operations) >= 10  # the REST API: jobs, their artifacts, exports, events, health

    page, blocked, errors = await _open(browser, f"{gateway.http_url}/docs")
    await page.locator(".opblock").first.wait_for()
    shown = {
        (
            (await block.locator(".opblock-summary-method").inner_text()).strip(),
            (await block.locator(".opblock-summary-path").get_attribute("data-path")),
        )
        for block in await page.locator(".opblock").all()
    }
    assert operations <= shown, f"missing from Swagger UI: {operations - shown}"
    assert blocked == [], f"the page tried to reach outside: {blocked}"
    assert errors == []


async def test_redoc_shows_every_operation_offline(gateway, browser):
    openapi = (await gateway.get("/openapi.json")).json()
    ids = [operation_id for _, _, operation_id in _operations(openapi)]
    assert len(ids) >= 10

    page, blocked, errors = await _open(browser, f"{gateway.http_url}/redoc")
    for operation_id in ids:  # an operation under two tags is shown twice
        section = page.locator(f'[data-section-id="operation/{operation_id}"]')
        await section.first.wait_for(state="attached")
    assert blocked == [], f"the page tried to reach outside: {blocked}"
    assert errors == []


async def test_the_event_catalogue_shows_every_event_type_offline(gateway, browser):
    document = (await gateway.get("/asyncapi.json")).text
    assert document == render(build_catalog())  # the committed catalogue's content, one source

    page, blocked, errors = await _open(browser, f"{gateway.http_url}/asyncapi")
    viewer = page.locator("asyncapi-viewer")
    await viewer.get_by_text("Pressroom events").first.wait_for()
    operations = sorted(json.loads(document)["operations"])
    await viewer.get_by_text(operations[-1], exact=True).first.wait_for(state="attached")
    text = await viewer.evaluate(SHOWN_TEXT)
    assert '"operations"' not in text  # rendered, not the raw document shown
    missing_types = [t for t in EVENT_TYPES if f"content.{{job_id}}.{t}" not in text]
    assert missing_types == [], f"event types not shown: {missing_types}"
    missing_operations = [o for o in operations if o not in text]
    assert missing_operations == [], f"operations not shown: {missing_operations}"
    for party in SERVICES:  # every service's part: its sends (gateway's job.requested, …) and receives
        assert any(o.startswith(f"{party.name}_sends_") for o in operations), party.name
    assert blocked == [], f"the page tried to reach outside: {blocked}"
    assert errors == []
