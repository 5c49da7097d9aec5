"""`pressroom generate`, `pressroom jobs …` and `pressroom keys …`: the command-line client.

`generate` talks to the gateway's WebSocket (`/v1/ws`, DESIGN.md §4): it starts the job, shows each stage
as it progresses (and the blog as it is written), resumes with `subscribe {after_seq}` if the connection
drops, prints where the results are and exits non-zero unless the job completed. `jobs` uses the REST
API. `keys` manages API keys directly in NATS (pressroom_runtime.apikeys).

Defaults come from the running embedded stack (PRESSROOM_HOME/stack.json and PRESSROOM_HOME/api-key):
with `make up` running, `pressroom generate "topic"` needs no option at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlsplit

import httpx
import typer
from pydantic import ValidationError
from rich.console import Console, Group
from rich.live import Live
from rich.markup import escape
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.table import Table
from rich.text import Text
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, InvalidURI

from pressroom_contracts.events import TERMINAL_TYPES
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.protocol import describe_validation_error
from pressroom_runtime.logs import configure_logging

from .config import StackPaths
from .stack import read_state

DEFAULT_GATEWAY = "http://127.0.0.1:8000"
GATEWAY_ENV = "PRESSROOM_GATEWAY_URL"
TOKEN_ENV = "PRESSROOM_API_KEY"
PING_INTERVAL = 20.0
RECONNECT_ATTEMPTS = 6
# Close codes a gateway uses to refuse a connection's credentials.
AUTH_CLOSE_CODES = {1008, 4001, 4401, 4403}
AUTH_ERROR_CODES = {"unauthorized", "unauthenticated", "invalid_token", "forbidden", "auth_required"}

console = Console()
errors = Console(stderr=True)

jobs_app = typer.Typer(help="Jobs over the gateway's REST API.", no_args_is_help=True)
keys_app = typer.Typer(help="API keys of the gateway (stored hashed in NATS).", no_args_is_help=True)


class ClientError(Exception):
    """A failure to explain in one line, without a traceback."""


# ---- where things are -----------------------------------------------------------------------------------


def stack_paths() -> StackPaths:
    return StackPaths(Path(os.environ.get("PRESSROOM_HOME", "").strip() or ".pressroom").resolve())


def stack_state() -> dict[str, Any] | None:
    return read_state(stack_paths().state_file)


def resolve_gateway(option: str | None) -> str:
    """--gateway / PRESSROOM_GATEWAY_URL, else the running stack's gateway, else http://127.0.0.1:8000."""
    value = option or (stack_state() or {}).get("gateway_url") or DEFAULT_GATEWAY
    value = value.strip().rstrip("/")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ClientError(f"--gateway {value!r}: expected an http:// or https:// URL")
    return value


def resolve_token(option: str | None) -> str | None:
    """--token / PRESSROOM_API_KEY, else the embedded stack's local key (PRESSROOM_HOME/api-key)."""
    if option and option.strip():
        return option.strip()
    try:
        return stack_paths().api_key.read_text().strip() or None
    except OSError:
        return None


def ws_url(gateway: str) -> str:
    parts = urlsplit(gateway)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{parts.path.rstrip('/')}/v1/ws"


def job_url(gateway: str, job_id: str, suffix: str = "") -> str:
    return f"{gateway}/v1/jobs/{quote(job_id, safe='')}{suffix}"


GatewayOption = Annotated[
    str | None,
    typer.Option(
        "--gateway", envvar=GATEWAY_ENV, help="Gateway URL (default: the running stack's, or :8000)."
    ),
]
TokenOption = Annotated[
    str | None,
    typer.Option(
        "--token",
        envvar=TOKEN_ENV,
        help="API key (default: the running stack's local key).",
        show_default=False,
    ),
]


@contextlib.contextmanager
def readable_errors() -> Iterator[None]:
    """Every expected failure becomes one red line and exit status 1. Library logs go to stderr and only
    from warnings up (PRESSROOM_LOG_LEVEL), so stdout holds just what the command prints."""
    configure_logging(os.environ.get("PRESSROOM_LOG_LEVEL", "WARNING"), "console", service="cli")
    try:
        yield
    except ClientError as exc:
        errors.print(Text(f"error: {exc}", style="red"), soft_wrap=True)
        raise typer.Exit(1) from None


# ---- REST -----------------------------------------------------------------------------------------------


def _detail(response: httpx.Response) -> str:
    try:
        data = response.json()
    except ValueError:
        return response.text.strip()[:300] or response.reason_phrase
    detail = data.get("detail", data.get("error", data)) if isinstance(data, dict) else data
    if isinstance(detail, dict):
        detail = detail.get("message", detail)
    if isinstance(detail, list):
        detail = "; ".join(
            f"{'.'.join(str(p) for p in item.get('loc', []) if p != 'body')}: {item.get('msg')}"
            if isinstance(item, dict)
            else str(item)
            for item in detail
        )
    return str(detail)


class Rest:
    def __init__(self, gateway: str, token: str | None, timeout: float = 30.0) -> None:
        self.gateway = gateway
        headers = {"Accept": "application/json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self.client = httpx.Client(base_url=gateway, headers=headers, timeout=timeout)

    def __enter__(self) -> Rest:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.client.request(method, path, **kwargs)
        except httpx.ConnectError as exc:
            raise ClientError(
                f"cannot reach the gateway at {self.gateway} ({_reason(exc)}); is it running?"
            ) from None
        except httpx.HTTPError as exc:
            raise ClientError(f"request to {self.gateway}{path} failed: {_reason(exc)}") from None
        if response.status_code == 401:
            raise ClientError(
                "the gateway refused the API key; pass one with --token or PRESSROOM_API_KEY "
                "(`pressroom keys create NAME` makes one)"
            )
        if response.status_code == 404:
            raise ClientError(f"not found: {_detail(response)}")
        if response.is_error:
            raise ClientError(f"{method} {path}: {response.status_code} {_detail(response)}")
        return response

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self.request(method, path, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise ClientError(f"{method} {path}: the gateway did not answer JSON") from None


def _reason(exc: BaseException) -> str:
    if (
        isinstance(exc, ConnectionRefusedError)
        or "Connection refused" in str(exc)
        or "Connect call failed" in str(exc)
    ):
        return "connection refused"
    text = str(exc).strip()
    return text or type(exc).__name__


# ---- generate: the live view ----------------------------------------------------------------------------

STAGE_LABELS = {"research": "research", "blog": "writing", "social": "social", "image": "image"}


@dataclass
class Outcome:
    job_id: str
    status: str = "running"
    title: str | None = None
    failure: str | None = None
    cost: float = 0.0
    usage: dict[str, float] = field(default_factory=dict)


class GenerateView:
    """One spinner/progress line per stage and, in a terminal, the tail of the blog as it is written.
    Without a terminal (a pipe, a log, a test) it prints one line per step and the blog text as it comes."""

    def __init__(self, out: Console, request: JobRequest) -> None:
        self.out = out
        self.request = request
        self.interactive = out.is_terminal
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("[bold]{task.description:<9}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[note]}", markup=False),
            console=out,
        )
        self.tasks: dict[str, TaskID] = {}
        self.tasks["research"] = self.progress.add_task("research", total=1, note="waiting")
        self.tasks["blog"] = self.progress.add_task("writing", total=request.target_words, note="waiting")
        self.tasks["social"] = self.progress.add_task("social", total=len(request.platforms), note="waiting")
        if request.image:
            self.tasks["image"] = self.progress.add_task("image", total=1, note="waiting")
        self.blog = ""
        self.live: Live | None = None
        self._open_line = False  # plain mode: streamed text printed without its newline yet
        self.social_done: set[str] = set()

    def __enter__(self) -> GenerateView:
        if self.interactive:
            self.live = Live(self._renderable(), console=self.out, refresh_per_second=12, transient=False)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._renderable(final=True))
            self.live.__exit__(None, None, None)
            self.live = None
        self._end_line()

    def _renderable(self, final: bool = False) -> Group:
        if final or not self.blog:
            return Group(self.progress)
        width = max(20, self.out.width - 4)
        lines: list[str] = []
        for paragraph in self.blog.splitlines() or [""]:
            lines.extend(paragraph[i : i + width] for i in range(0, max(len(paragraph), 1), width))
        tail = "\n".join(lines[-10:])
        return Group(self.progress, Panel(Text(tail), title="blog (as it is written)", border_style="dim"))

    def _refresh(self) -> None:
        if self.live is not None:
            self.live.update(self._renderable())

    def _end_line(self) -> None:
        if self._open_line:
            self.out.file.write("\n")
            self.out.file.flush()
            self._open_line = False

    def line(self, stage: str, message: str, style: str = "") -> None:
        if self.live is not None:
            self.live.console.print(Text(f"{STAGE_LABELS.get(stage, stage):>9}  {message}", style=style))
            return
        self._end_line()
        self.out.print(Text(f"{STAGE_LABELS.get(stage, stage):>9}  {message}", style=style), soft_wrap=True)

    def note(
        self, stage: str, note: str, *, advance: float | None = None, done: bool = False, style: str = ""
    ) -> None:
        task = self.tasks.get(stage)
        if task is None:
            return
        kwargs: dict[str, Any] = {"note": note}
        if advance is not None:
            kwargs["completed"] = advance
        if done:
            kwargs["completed"] = self.progress.tasks[task].total
        if style:
            kwargs["description"] = f"[{style}]{STAGE_LABELS.get(stage, stage)}[/]"
        self.progress.update(task, **kwargs)
        if done:
            self.progress.stop_task(task)
        self._refresh()

    def fail(self, stage: str, note: str) -> None:
        task = self.tasks.get(stage)
        if task is not None:
            self.progress.update(task, note=note, description=f"[red]{STAGE_LABELS.get(stage, stage)}[/]")
            self.progress.stop_task(task)
            self._refresh()

    def delta(self, stage: str, offset: int, text: str) -> None:
        if stage != "blog":
            return
        if offset < len(self.blog):  # a retry restarts the text: replace what it rewrites
            self.blog = self.blog[:offset]
            if not self.interactive:
                self._end_line()
                self.out.print(Text("    (the writer started again)", style="yellow"))
        self.blog += text
        if self.interactive:
            self.note("blog", f"{len(self.blog.split())} words", advance=len(self.blog.split()))
        else:
            if not self._open_line:
                self.out.file.write("\n")
            self.out.file.write(text)
            self.out.file.flush()
            self._open_line = True


def describe_event(view: GenerateView, outcome: Outcome, event: dict[str, Any]) -> None:
    kind = event.get("type", "")
    data = event.get("data") or {}
    stage = data.get("stage", "")
    if kind == "stage.progress":
        if stage in view.tasks:
            view.note(stage, data.get("message", ""))
        view.line(stage, data.get("message", ""), style="dim" if view.interactive else "")
    elif kind == "research.completed":
        count = len(data.get("sources") or [])
        note = (
            f"skipped: {data.get('reason') or 'off'}"
            if data.get("skipped")
            else f"{count} source{'s' if count != 1 else ''} ({data.get('provider')})"
        )
        view.note("research", note, done=True)
        view.line("research", note)
    elif kind == "blog.completed":
        outcome.title = data.get("title")
        note = f"“{data.get('title')}”, {data.get('word_count')} words"
        view.note("blog", note, done=True)
        view.line("blog", note)
    elif kind == "social.completed":
        view.social_done.add(data.get("platform", ""))
        note = f"{data.get('platform')}: {data.get('characters')}/{data.get('limit')} characters"
        total = len(view.request.platforms)
        view.note(
            "social",
            f"{len(view.social_done)}/{total} ({', '.join(sorted(view.social_done))})",
            advance=len(view.social_done),
            done=len(view.social_done) >= total,
        )
        view.line("social", note)
    elif kind == "image.completed":
        note = f"{data.get('width')}x{data.get('height')} ({data.get('provider')})"
        view.note("image", note, done=True)
        view.line("image", note)
    elif kind == "usage.recorded":
        outcome.usage[data.get("call") or event.get("id", "")] = float(data.get("cost_usd") or 0)
        outcome.cost = sum(outcome.usage.values())
    elif kind == "stage.failed":
        retry = "retrying" if data.get("retryable") else "failed"
        message = f"{retry} ({data.get('code')}): {data.get('message')}"
        if not data.get("retryable"):
            view.fail(stage, message)
        view.line(stage, message, style="yellow" if data.get("retryable") else "red")
    elif kind == "job.completed":
        outcome.status = "completed"
        view.line("job", "completed", style="green")
    elif kind == "job.failed":
        outcome.status = "failed"
        outcome.failure = f"failed at {data.get('stage')}: {data.get('code')}: {data.get('message')}"
        view.fail(data.get("stage", ""), f"{data.get('code')}: {data.get('message')}")
        view.line("job", outcome.failure, style="red")
    elif kind == "job.cancelled":
        outcome.status = "cancelled"
        outcome.failure = f"cancelled: {data.get('reason')}"
        view.line("job", outcome.failure, style="yellow")


# ---- generate: the connection ---------------------------------------------------------------------------


@contextlib.asynccontextmanager
async def pinging(ws: ClientConnection) -> AsyncIterator[None]:
    """The protocol's application-level ping every 20 s (the gateway's read deadline expects traffic)."""

    async def loop() -> None:
        while True:
            await asyncio.sleep(PING_INTERVAL)
            await ws.send(json.dumps({"type": "ping"}))

    task = asyncio.create_task(loop())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
            await task


def _auth_refused(reason: str = "") -> ClientError:
    return ClientError(
        "the gateway refused the API key"
        + (f" ({reason})" if reason else "")
        + "; pass one with --token or PRESSROOM_API_KEY (`pressroom keys create NAME` makes one)"
    )


async def watch_job(
    gateway: str, token: str | None, request: JobRequest, view: GenerateView, outcome: Outcome
) -> None:
    """Starts the job and follows it to its end, reconnecting (with after_seq) when the connection drops."""
    seq = 0
    failures = 0
    body = request.model_dump(mode="json", exclude_defaults=True)
    body["topic"] = request.topic
    while True:
        try:
            async with connect(ws_url(gateway), open_timeout=10, max_size=4 * 1024 * 1024) as ws:
                if token:
                    await ws.send(json.dumps({"type": "auth", "token": token, "ref": "auth"}))
                if not outcome.job_id:
                    await ws.send(json.dumps({"type": "start", "request": body, "ref": "start"}))
                else:
                    await ws.send(
                        json.dumps({"type": "subscribe", "job_id": outcome.job_id, "after_seq": seq})
                    )
                async with pinging(ws):
                    async for raw in ws:
                        failures = 0
                        frame = json.loads(raw)
                        kind = frame.get("type")
                        if kind == "accepted" and frame.get("ref") == "start":
                            outcome.job_id = frame["job_id"]
                            view.line("job", f"accepted: {outcome.job_id}")
                        elif kind == "error":
                            code, message = frame.get("code", ""), frame.get("message", "")
                            if code in AUTH_ERROR_CODES or frame.get("ref") == "auth":
                                raise _auth_refused(message)
                            if frame.get("ref") == "start" or not outcome.job_id:
                                raise ClientError(f"the gateway refused the job: {message} ({code})")
                            view.line("job", f"gateway: {message} ({code})", style="yellow")
                        elif kind == "event" and frame.get("job_id") == outcome.job_id:
                            if frame["seq"] <= seq:
                                continue
                            seq = frame["seq"]
                            event = frame.get("event") or {}
                            describe_event(view, outcome, event)
                            if event.get("type") in TERMINAL_TYPES:
                                return
                        elif kind == "resync" and frame.get("job_id") == outcome.job_id:
                            seq = frame["seq"]
                            for event in (frame.get("state") or {}).get("events", []):
                                describe_event(view, outcome, event)
                                if event.get("type") in TERMINAL_TYPES:
                                    return
                        elif kind == "delta" and frame.get("job_id") == outcome.job_id:
                            view.delta(
                                frame.get("stage", ""), int(frame.get("offset", 0)), frame.get("text", "")
                            )
        except ConnectionClosed as exc:
            close = exc.rcvd
            if close is not None and close.code in AUTH_CLOSE_CODES:
                raise _auth_refused(close.reason) from None
            reason = f"{close.code} {close.reason}".strip() if close is not None else "connection lost"
            failures += 1
            if failures > RECONNECT_ATTEMPTS:
                raise ClientError(f"lost the connection to the gateway ({reason})") from None
            view.line("job", f"connection closed ({reason}); reconnecting…", style="yellow")
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status in (401, 403):
                raise _auth_refused() from None
            raise ClientError(f"the gateway at {gateway} refused the WebSocket: HTTP {status}") from None
        except (OSError, InvalidHandshake, InvalidURI, TimeoutError) as exc:
            if not outcome.job_id:
                raise ClientError(
                    f"cannot reach the gateway at {gateway} ({_reason(exc)}); is it running?"
                ) from None
            failures += 1
            if failures > RECONNECT_ATTEMPTS:
                raise ClientError(f"lost the connection to the gateway ({_reason(exc)})") from None
            view.line("job", f"gateway unreachable ({_reason(exc)}); retrying…", style="yellow")
        await asyncio.sleep(min(10.0, 0.5 * 2**failures))


def build_request(
    topic: str,
    research: bool,
    platforms: list[str],
    tone: str | None,
    audience: str | None,
    language: str | None,
    length: str | None,
    image: bool,
    x_thread: bool,
    budget: float | None,
    sources: list[str],
) -> JobRequest:
    data: dict[str, Any] = {"topic": topic, "research": research, "image": image, "x_thread": x_thread}
    optional = {
        "platforms": platforms or None,
        "tone": tone,
        "audience": audience,
        "language": language,
        "length": length,
        "budget_usd": budget,
        "sources": sources or None,
    }
    data.update({k: v for k, v in optional.items() if v is not None})
    try:
        return JobRequest.model_validate(data)
    except ValidationError as exc:
        raise ClientError(f"invalid job: {describe_validation_error(exc)}") from None


def summary(gateway: str, token: str | None, outcome: Outcome) -> list[tuple[str, str]]:
    """Where the results are, as (label, value) rows; the stored state when the REST API can give it."""
    snapshot: dict[str, Any] = {}
    with contextlib.suppress(ClientError), Rest(gateway, token, timeout=10) as rest:
        snapshot = rest.json("GET", f"/v1/jobs/{quote(outcome.job_id, safe='')}")
    job = snapshot.get("job") or {}
    rows = [("job", outcome.job_id), ("status", job.get("status") or outcome.status)]
    title = (snapshot.get("blog") or {}).get("title") or outcome.title
    if title:
        rows.append(("title", title))
    rows.append(("job (REST)", job_url(gateway, outcome.job_id)))
    rows.append(("markdown", job_url(gateway, outcome.job_id, "/export.md")))
    image = snapshot.get("images") or snapshot.get("image") or {}
    if image.get("url"):
        rows.append(("image", image["url"]))
    cost = max(cost_of(snapshot) if snapshot else 0.0, outcome.cost)
    rows.append(("cost", f"${cost:.4f} (estimate)"))
    rows.append(("web page", f"{gateway}/"))
    return rows


def print_rows(rows: list[tuple[str, str]]) -> None:
    """One `label  value` line each, never wrapped, so URLs stay whole for copying."""
    width = max(len(label) for label, _ in rows)
    for label, value in rows:
        line = Text(f"{label:<{width}}  ", style="bold")
        line.append(value)
        console.print(line, soft_wrap=True)


def cost_of(snapshot: dict[str, Any]) -> float:
    for value in (
        (snapshot.get("usage_total") or {}).get("cost_usd"),
        (snapshot.get("cost") or {}).get("cost_usd") if isinstance(snapshot.get("cost"), dict) else None,
        (snapshot.get("job") or {}).get("cost_usd"),
    ):
        if isinstance(value, int | float):
            return float(value)
    return 0.0


def generate(
    topic: Annotated[str, typer.Argument(help="What to write about.")],
    research: Annotated[
        bool, typer.Option("--research/--no-research", help="Research the topic first.")
    ] = True,
    platform: Annotated[
        list[str],
        typer.Option("--platform", "-p", help="linkedin, x, threads, facebook, instagram (repeatable)."),
    ] = [],  # noqa: B006 - typer reads the default
    tone: Annotated[str | None, typer.Option(help="e.g. informative, playful.")] = None,
    audience: Annotated[str | None, typer.Option(help="Who it is for.")] = None,
    language: Annotated[str | None, typer.Option(help="BCP 47 tag of the output, e.g. en, pt-BR.")] = None,
    length: Annotated[str | None, typer.Option(help="short, medium or long.")] = None,
    image: Annotated[bool, typer.Option("--image/--no-image", help="Draw an illustration.")] = True,
    x_thread: Annotated[bool, typer.Option("--x-thread", help="Write the X post as a thread.")] = False,
    budget: Annotated[
        float | None, typer.Option("--budget", help="Stop past this estimated cost (USD).")
    ] = None,
    source: Annotated[
        list[str], typer.Option("--source", help="A URL research must include (repeatable).")
    ] = [],  # noqa: B006
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Generate a blog post, social posts and an illustration, showing every stage as it happens."""
    with readable_errors():
        request = build_request(
            topic, research, platform, tone, audience, language, length, image, x_thread, budget, source
        )
        url = resolve_gateway(gateway)
        key = resolve_token(token)
        outcome = Outcome(job_id="")
        started = time.monotonic()
        try:
            with GenerateView(console, request) as view:
                asyncio.run(watch_job(url, key, request, view, outcome))
        except KeyboardInterrupt:
            if outcome.job_id:
                errors.print(
                    f"stopped watching; job {outcome.job_id} keeps running "
                    f"(`pressroom jobs show {outcome.job_id}`)"
                )
            raise typer.Exit(130) from None
        console.print()
        print_rows(summary(url, key, outcome))
        elapsed = time.monotonic() - started
        if outcome.status != "completed":
            raise ClientError(
                f"job {outcome.job_id} {outcome.failure or outcome.status} (after {elapsed:.0f}s)"
            )
        console.print(Text(f"done in {elapsed:.0f}s", style="green"))


# ---- jobs -----------------------------------------------------------------------------------------------

STATUS_STYLES = {"completed": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


@jobs_app.command("list")
def jobs_list(
    status: Annotated[
        str | None, typer.Option(help="requested, running, completed, failed or cancelled.")
    ] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Jobs per page.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """List your jobs, newest first."""
    with readable_errors():
        params: dict[str, Any] = {"limit": limit}
        if status:
            params["status"] = status
        if cursor:
            params["cursor"] = cursor
        with Rest(resolve_gateway(gateway), resolve_token(token)) as rest:
            page = rest.json("GET", "/v1/jobs", params=params)
        if as_json:
            sys.stdout.write(json.dumps(page, indent=2) + "\n")
            return
        jobs = page.get("jobs", []) if isinstance(page, dict) else []
        if not jobs:
            console.print("no jobs" + (f" with status {status}" if status else ""))
            return
        table = Table()
        for column in ("id", "status", "created", "cost", "title / topic"):
            table.add_column(column, overflow="fold")
        for job in jobs:
            state = job.get("status", "")
            table.add_row(
                job.get("id", ""),
                Text(state, style=STATUS_STYLES.get(state, "")),
                str(job.get("created_at", ""))[:19].replace("T", " "),
                f"${float(job.get('cost_usd') or 0):.4f}",
                Text(job.get("title") or job.get("topic") or ""),
            )
        console.print(table)
        if page.get("next_cursor"):
            console.print(f"more: pressroom jobs list --cursor {escape(page['next_cursor'])}")


@jobs_app.command("show")
def jobs_show(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Also print the blog post's Markdown.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Show one job: status, cost, the blog, each social post and the illustration."""
    with readable_errors():
        url = resolve_gateway(gateway)
        with Rest(url, resolve_token(token)) as rest:
            data = rest.json("GET", f"/v1/jobs/{quote(job_id, safe='')}")
        if as_json:
            sys.stdout.write(json.dumps(data, indent=2) + "\n")
            return
        print_job(url, data, markdown=markdown)


def print_job(gateway: str, data: dict[str, Any], *, markdown: bool) -> None:
    job = data.get("job") or {}
    state = job.get("status", "")
    head = Table(show_header=False, box=None, padding=(0, 1))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    head.add_row("job", job.get("id", ""))
    head.add_row("status", Text(state, style=STATUS_STYLES.get(state, "")))
    head.add_row("topic", Text(job.get("topic", "")))
    head.add_row("created", str(job.get("created_at", "")))
    failure = job.get("failure")
    if failure:
        head.add_row(
            "failure", Text(f"{failure.get('stage')}: {failure.get('code')}: {failure.get('message')}")
        )
    budget = job.get("budget_usd")
    head.add_row("cost", f"${cost_of(data):.4f}" + (f" of ${budget:.2f} budget" if budget else ""))
    head.add_row("REST", job_url(gateway, job.get("id", "")))
    console.print(head)

    blog = data.get("blog")
    if blog:
        versions = len(blog.get("versions") or []) or 1
        console.print(
            Text(
                f"\nblog  v{blog.get('version')} ({blog.get('origin', 'generated')}, {versions} versions), "
                f"{blog.get('word_count')} words",
                style="bold",
            )
        )
        console.print(Text(blog.get("title", "")))
        if markdown:
            console.print(Panel(Text(blog.get("markdown", "")), border_style="dim"))
    social = data.get("social") or {}
    if social:
        table = Table(title="social posts", title_justify="left")
        for column in ("platform", "characters", "version", "text"):
            table.add_column(column, overflow="fold")
        for platform, post in social.items():
            over = post.get("characters", 0) > post.get("limit", 0)
            table.add_row(
                platform,
                Text(f"{post.get('characters')}/{post.get('limit')}", style="red" if over else "green"),
                f"v{post.get('version')} {post.get('origin', '')}".strip(),
                Text(post.get("text", "")),
            )
        console.print(table)
    image = data.get("image") or data.get("images")
    if image:
        console.print(
            Text(
                f"\nimage v{image.get('version')} {image.get('width')}x{image.get('height')} ({image.get('provider')})",
                style="bold",
            )
        )
        if image.get("url"):
            console.print(Text(image["url"]), soft_wrap=True)


@jobs_app.command("export")
def jobs_export(
    job_id: Annotated[str, typer.Argument(help="The job's id.")],
    fmt: Annotated[
        str, typer.Option("--format", "-f", help="md (Markdown) or zip (Markdown and image).")
    ] = "md",
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout for md, JOB.zip).")
    ] = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Export a job as Markdown, or as a zip with the illustration."""
    with readable_errors():
        if fmt not in ("md", "zip"):
            raise ClientError(f"--format {fmt!r}: expected md or zip")
        with Rest(resolve_gateway(gateway), resolve_token(token), timeout=60) as rest:
            response = rest.request("GET", f"/v1/jobs/{quote(job_id, safe='')}/export.{fmt}")
        if output is None and fmt == "md":
            sys.stdout.write(response.text)
            return
        target = output or Path(f"pressroom-{job_id}.{fmt}")
        target.write_bytes(response.content)
        errors.print(f"wrote {target} ({len(response.content)} bytes)")


# ---- keys -----------------------------------------------------------------------------------------------


def resolve_nats(option: str | None) -> str:
    state = stack_state() or {}
    url = option or state.get("nats_admin_url") or state.get("nats_url")  # managing keys takes the admin
    if not url:
        raise ClientError("no NATS to talk to: set NATS_URL or start the stack (`make up`)")
    return str(url)


NatsOption = Annotated[
    str | None, typer.Option("--nats", envvar="NATS_URL", help="NATS URL (default: the running stack's).")
]


async def _with_nats(url: str, action: Any) -> Any:
    import nats
    from nats.errors import NoServersError

    from pressroom_runtime import apikeys

    async def quiet(exc: Exception) -> None:
        """nats-py logs every failed attempt with a traceback; the one error we raise says it all."""

    try:
        async with asyncio.timeout(10):
            nc = await nats.connect(
                url,
                connect_timeout=3,
                max_reconnect_attempts=1,
                reconnect_time_wait=0.5,
                allow_reconnect=False,
                error_cb=quiet,
            )
    except (NoServersError, OSError, TimeoutError) as exc:
        raise ClientError(f"cannot reach NATS at {url} ({_reason(exc)})") from None
    try:
        return await action(nc)
    except (apikeys.KeyStoreMissing, ValueError) as exc:
        raise ClientError(str(exc)) from None
    finally:
        await nc.close()


def _record(record: Any) -> dict[str, Any]:
    if hasattr(record, "model_dump"):
        return dict(record.model_dump(mode="json"))
    if isinstance(record, dict):
        return record
    return dict(vars(record))


@keys_app.command("create")
def keys_create(
    name: Annotated[str, typer.Argument(help="The client the key is for (its jobs are its own).")],
    nats_url: NatsOption = None,
) -> None:
    """Create an API key. The key is shown once; only its hash is stored."""
    from pressroom_runtime import apikeys

    with readable_errors():
        token, record = asyncio.run(
            _with_nats(resolve_nats(nats_url), lambda nc: apikeys.create_key(nc, name))
        )
        info = _record(record)
        errors.print(
            f"created a key for {escape(str(info.get('name', name)))}; keep it, it is not shown again:"
        )
        sys.stdout.write(token + "\n")


@keys_app.command("list")
def keys_list(nats_url: NatsOption = None) -> None:
    """List the API keys (never the keys themselves)."""
    from pressroom_runtime import apikeys

    with readable_errors():
        records = asyncio.run(_with_nats(resolve_nats(nats_url), apikeys.list_keys))
        rows = [_record(r) for r in records]
        if not rows:
            console.print("no keys")
            return
        columns = list(dict.fromkeys(key for row in rows for key in row if key not in ("hash", "digest")))
        table = Table()
        for column in columns:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*(Text("" if row.get(c) is None else str(row.get(c))) for c in columns))
        console.print(table)


@keys_app.command("revoke")
def keys_revoke(
    key: Annotated[
        str, typer.Argument(help="The client id (or its unique name) that `pressroom keys list` shows.")
    ],
    nats_url: NatsOption = None,
) -> None:
    """Revoke a client's API keys: the gateway refuses them from then on (within its cache time)."""
    from pressroom_runtime import apikeys

    async def revoke(nc: Any) -> str:
        records = await apikeys.list_keys(nc)
        ids = {r.client_id for r in records if r.client_id == key} or {
            r.client_id for r in records if r.name == key
        }
        if not ids:
            raise ClientError(f"no key {key!r}")
        if len(ids) > 1:
            raise ClientError(f"{len(ids)} clients are named {key!r}; revoke one by its client id")
        (client_id,) = ids
        await apikeys.revoke(nc, client_id)
        return client_id

    with readable_errors():
        client_id = asyncio.run(_with_nats(resolve_nats(nats_url), revoke))
        console.print(f"revoked {escape(client_id)}")


def register(app: typer.Typer) -> None:
    """Adds the client commands to the `pressroom` command."""
    app.command()(generate)
    app.add_typer(jobs_app, name="jobs")
    app.add_typer(keys_app, name="keys")
