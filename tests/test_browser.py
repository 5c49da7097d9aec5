"""The web page in a real browser (Python Playwright driving Debian's chromium) against every service.

It creates a job on the page and watches it complete (reloading it mid-blog: the text so far comes
back), reloads the page while a job is held mid-flight and still sees it complete (resuming from the
last sequence it saw), and edits the blog.

The `browser` fixture (pressroom_testkit) skips, with the reason, when chromium or the playwright package
is missing (`make test` installs chromium with apt where it can).
"""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import nats

from pipeline import script_pipeline
from pressroom_devstack.provisioning import provision_nats
from pressroom_runtime import apikeys

TIMEOUT_MS = 90_000


async def _create_key(nats_url: str, name: str) -> str:
    nc = await nats.connect(nats_url)
    try:
        token, _ = await apikeys.create_key(nc, name)
        return token
    finally:
        await nc.close()


class SentFrames:
    """What the page sent over its WebSockets, parsed."""

    def __init__(self) -> None:
        self.frames: list[dict[str, Any]] = []

    def attach(self, page: Any) -> None:
        page.on("websocket", lambda ws: ws.on("framesent", self._record))

    def _record(self, payload: Any) -> None:
        try:
            self.frames.append(json.loads(payload))
        except (TypeError, ValueError):
            pass

    def of_type(self, kind: str) -> list[dict[str, Any]]:
        return [f for f in self.frames if f.get("type") == kind]


async def test_the_page_runs_a_job_survives_a_reload_and_edits_the_blog(
    browser, service_runner, scripted_llm, nats_url, tmp_path: Path
):
    script_pipeline(scripted_llm)
    chunk_delay = scripted_llm.chunk_delay
    provision_nats(nats_url)
    token = await _create_key(nats_url, "browser")
    # As `make up` does: the page carries the local key, so it is usable without a step.
    service_runner.start(env={"PRESSROOM_GATEWAY_PAGE_TOKEN": token})
    gateway = service_runner.gateway_url

    context = await browser.new_context(viewport={"width": 1280, "height": 1400})
    page = await context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    console: list[str] = []
    page.on("console", lambda message: console.append(f"{message.type}: {message.text}"))
    page.on("pageerror", lambda error: console.append(f"pageerror: {error.stack or error}"))
    sent = SentFrames()
    sent.attach(page)
    try:
        await page.goto(f"{gateway}/")
        await page.wait_for_selector('#connection[data-state="online"]')
        assert await page.is_hidden("#key-panel"), "the page asked for a key although it was given one"
        # A key kept from another stack that this gateway refuses gives way to the page's key.
        await page.evaluate("() => localStorage.setItem('pressroom-token', 'prk_from-another-stack')")
        await page.reload()
        await page.wait_for_function("() => localStorage.getItem('pressroom-token') === null")
        await page.wait_for_selector('#connection[data-state="online"]')
        assert await page.is_hidden("#key-panel")
        console.clear()  # the browser logs the refused attempts

        # ---- a job from the form, watched to the end ------------------------------------------------------
        await page.fill("#topic", "Rooftop solar panels for homes")
        await page.select_option("#length", "short")
        scripted_llm.chunk_delay = 1.0  # slow enough to watch the blog being written, and reload meanwhile
        try:
            await page.click("#start-button")
            # The blog appears as it is written, as plain text, then as the server's sanitised HTML.
            await page.wait_for_selector("#blog-stream >> text=Rooftop solar for everyone")
            assert await page.is_hidden("#blog-html")
            # Reloaded mid-blog: the whole text written so far is back at once, then the rest streams on.
            # From the gateway, not from the page's own storage: its saved view is dropped first (and the
            # page cannot save it again on its way out).
            so_far = (await page.text_content("#blog-stream")) or ""
            await page.evaluate(
                """() => {
                    for (const key of Object.keys(sessionStorage)) {
                        if (key.startsWith("pressroom:view:")) sessionStorage.removeItem(key);
                    }
                    Storage.prototype.setItem = function () {};
                }"""
            )
            await page.reload()
            await page.wait_for_function(
                "(text) => (document.getElementById('blog-stream').textContent || '').startsWith(text)",
                arg=so_far,
            )
            assert await page.is_hidden("#blog-html"), "the blog finished before the reload was checked"
            await page.wait_for_selector('#timeline li[data-stage="blog"][data-state="done"]')
        finally:
            scripted_llm.chunk_delay = chunk_delay
        await page.wait_for_selector('#job-status[data-status="completed"]')
        first_job = (await page.text_content("#job-id")) or ""
        assert first_job
        await page.wait_for_selector("#blog-html h1")
        assert "Rooftop solar for everyone" in ((await page.text_content("#blog-html h1")) or "")
        assert await page.is_hidden("#blog-stream")
        # What the checks before publishing found: the scripted writer cites a source [9] research never returned.
        await page.wait_for_selector("#blog-checks >> text=removed")
        assert "[9]" in ((await page.text_content("#blog-checks")) or "")
        # The timeline shows every stage's progress.
        for stage in ("research", "blog", "social", "image"):
            await page.wait_for_selector(f'#timeline li[data-stage="{stage}"][data-state="done"]')
        assert "knowledge base" in ((await page.text_content("#timeline")) or "")
        # Social posts in tabs, with their counts against each limit.
        await page.wait_for_selector('#social-tabs button[data-platform="x"] >> text=✓')
        await page.click('#social-tabs button[data-platform="x"]')
        assert "/ 280 characters" in ((await page.text_content("#social-count")) or "")
        await page.click('#social-tabs button[data-platform="linkedin"]')
        assert "/ 3000 characters" in ((await page.text_content("#social-count")) or "")
        assert "Checks:" in ((await page.text_content("#social-count")) or "")
        # The brand voice is saved from the page, for the next jobs.
        await page.click("#voice-card summary")
        await page.fill("#voice-description", "Warm and plain.")
        await page.fill("#voice-link", "https://blog.example.com/{slug}")
        await page.click("#voice-form button[type=submit]")
        await page.wait_for_selector("#voice-status >> text=Saved")
        # The illustration, through its presigned URL, really loads.
        await page.wait_for_function(
            "() => { const i = document.getElementById('image'); return i.complete && i.naturalWidth > 0 }"
        )
        assert (await page.get_attribute("#image", "src") or "").startswith("http")
        assert (await page.text_content("#job-cost") or "").startswith("$")
        # And it is in the history.
        await page.wait_for_selector(f'#history-list li[data-job-id="{first_job}"]')

        # ---- a job held mid-flight, the page reloaded, the job still completes ---------------------------
        scripted_llm.hang()  # the writer's model call waits until release()
        before = len(scripted_llm.requests)
        await page.fill("#topic", "Heat pumps in old houses")
        await page.click("#start-button")
        await page.wait_for_function(f"() => document.getElementById('job-id').textContent !== '{first_job}'")
        second_job = (await page.text_content("#job-id")) or ""
        await asyncio.to_thread(scripted_llm.wait_for_requests, before + 1, 30)  # the writer waits
        await page.wait_for_selector('#timeline li[data-stage="research"][data-state="done"]')
        seen = int(await page.evaluate(f"() => sessionStorage.getItem('pressroom:seq:{second_job}')") or 0)
        assert seen > 0
        subscribes_before = len(sent.of_type("subscribe"))

        await page.reload()
        await page.wait_for_selector('#connection[data-state="online"]')
        assert (await page.text_content("#job-id")) == second_job  # the page reopened the job
        await _eventually(lambda: len(sent.of_type("subscribe")) > subscribes_before)
        resume = sent.of_type("subscribe")[-1]
        assert resume["job_id"] == second_job and resume["after_seq"] >= seen, resume
        # What was seen before the reload is still on screen.
        assert await page.is_visible('#timeline li[data-stage="research"][data-state="done"]')
        assert (await page.get_attribute("#job-status", "data-status")) in ("requested", "running")

        scripted_llm.release()
        await page.wait_for_selector('#job-status[data-status="completed"]')
        await page.wait_for_selector("#blog-html h1")
        await page.wait_for_selector('#social-tabs button[data-platform="x"] >> text=✓')
        # No event was applied twice: each social post is reported once in the timeline.
        social = (await page.text_content('#timeline li[data-stage="social"]')) or ""
        assert social.count("x ready") == 1, social

        # ---- edit the blog: version 2 --------------------------------------------------------------------
        await page.click("#blog-edit")
        await page.fill("#blog-title", "Heat pumps, revisited")
        await page.fill(
            "#blog-markdown",
            "# Heat pumps, revisited\n\nEdited by a person.\n\n<script>window.pwned = 1</script>\n",
        )
        await page.click("#blog-editor button[type=submit]")
        await page.wait_for_selector('#blog-version[data-version="2"]')
        await page.wait_for_selector("#blog-html >> text=Edited by a person.")
        assert "edited" in ((await page.text_content("#blog-version")) or "")
        assert await page.evaluate("() => window.pwned") is None  # the sanitised HTML ran no script
        assert "Edited: version 2" in ((await page.text_content('#timeline li[data-stage="blog"]')) or "")

        # ---- the history opens an earlier job -----------------------------------------------------------
        await page.click(f'#history-list li[data-job-id="{first_job}"] button')
        await page.wait_for_function(f"() => document.getElementById('job-id').textContent === '{first_job}'")
        await page.wait_for_selector('#job-status[data-status="completed"]')
        await page.wait_for_selector("#blog-html >> text=Rooftop solar for everyone")

        # ---- regenerate its blog: a new version, written again -----------------------------------------
        await page.click("#regen-blog")
        await page.wait_for_selector('#blog-version[data-version="2"]')
        assert "regenerated" in ((await page.text_content("#blog-version")) or "")
        await page.wait_for_selector("#blog-html >> text=Rooftop solar for everyone")

        # ---- cancel a job held mid-flight ---------------------------------------------------------------
        scripted_llm.hang()
        before = len(scripted_llm.requests)
        await page.fill("#topic", "A job to cancel")
        await page.click("#start-button")
        await page.wait_for_function(f"() => document.getElementById('job-id').textContent !== '{first_job}'")
        await asyncio.to_thread(scripted_llm.wait_for_requests, before + 1, 30)
        await page.click("#cancel-button")
        await page.wait_for_selector('#job-status[data-status="cancelled"]')
        assert await page.is_disabled("#cancel-button")
        scripted_llm.release()

        errors = [line for line in console if line.startswith(("error", "pageerror"))]
        assert not errors, errors
    finally:
        await page.screenshot(path=str(tmp_path / "page.png"), full_page=True)
        (tmp_path / "console.txt").write_text("\n".join(console))
        await context.close()


async def _eventually(check: Any, timeout: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not check():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_without_a_page_token_the_page_asks_for_a_key(browser, service_runner, nats_url):
    provision_nats(nats_url)
    token = await _create_key(nats_url, "browser")
    service_runner.start("gateway")
    context = await browser.new_context()
    page = await context.new_page()
    page.set_default_timeout(30_000)
    try:
        await page.goto(f"{service_runner.gateway_url}/")
        await page.wait_for_selector("#key-panel:not([hidden])")
        await page.fill("#key-input", "prk_wrong")
        await page.click("#key-form button[type=submit]")
        await page.wait_for_selector('#connection:has-text("key refused")')
        await page.fill("#key-input", token)
        await page.click("#key-form button[type=submit]")
        await page.wait_for_selector('#connection[data-state="online"]')
        await page.wait_for_selector("#key-panel", state="hidden")
        assert await page.evaluate("() => localStorage.getItem('pressroom-token')") == token
        # A reload keeps the key.
        await page.reload()
        await page.wait_for_selector('#connection[data-state="online"]')
        assert await page.is_hidden("#key-panel")
    finally:
        await context.close()
