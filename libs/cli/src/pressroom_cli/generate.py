"""`pressroom generate`: start a job over the WebSocket and show every stage as it happens."""

from __future__ import annotations

import asyncio
import time
from typing import Annotated, Any

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.text import Text

from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.protocol import describe_validation_error

from .errors import ClientError, ExitCode, UsageError, readable_errors, stderr
from .live import follow
from .options import GatewayOption, TokenOption
from .rest import Rest
from .settings import job_path, resolve_gateway, resolve_token
from .view import GenerateView, Outcome

console = Console()


def build_request(options: dict[str, Any]) -> JobRequest:
    """The job from the command's options; an option left out keeps the contract's default."""
    given = {name: value for name, value in options.items() if value not in (None, [])}
    try:
        return JobRequest.model_validate(given)
    except ValidationError as exc:
        raise UsageError(f"invalid job: {describe_validation_error(exc)}") from None


def summary(gateway: str, token: str | None, outcome: Outcome) -> list[tuple[str, str]]:
    """Where the results are; the stored job (title, image URL, cost) when the REST API can give it."""
    rows = [("job", outcome.job_id)]
    title, cost, image = outcome.title, outcome.cost_usd, None
    try:
        with Rest(gateway, token, timeout=10) as rest:
            job = rest.job(outcome.job_id)
        rows.append(("status", job.job.status.value))
        title = job.blog.title if job.blog else title
        cost = job.job.cost_usd
        image = job.images.url if job.images else None
    except ClientError as exc:
        rows.append(("status", f"{outcome.status} (stored state unavailable: {exc.message})"))
    if title:
        rows.append(("title", title))
    rows.append(("job (REST)", gateway + job_path(outcome.job_id)))
    rows.append(("markdown", gateway + job_path(outcome.job_id, "/export.md")))
    if image:
        rows.append(("image", image))
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


def generate(
    topic: Annotated[str, typer.Argument(help="What to write about.", show_default=False)],
    research: Annotated[
        bool, typer.Option("--research/--no-research", help="Research the topic first.")
    ] = True,
    platform: Annotated[
        list[str] | None,
        typer.Option("--platform", "-p", help="linkedin, x, threads, facebook, instagram (repeatable)."),
    ] = None,
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
        list[str] | None, typer.Option("--source", help="A URL research must include (repeatable).")
    ] = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Generate a blog post, social posts and an illustration, showing every stage as it happens.

    Exits 0 when the job completed, 1 when it failed or was cancelled (or the gateway refused it).
    """
    with readable_errors():
        request = build_request(
            {
                "topic": topic,
                "research": research,
                "platforms": platform,
                "tone": tone,
                "audience": audience,
                "language": language,
                "length": length,
                "image": image,
                "x_thread": x_thread,
                "budget_usd": budget,
                "sources": source,
            }
        )
        url, key = resolve_gateway(gateway), resolve_token(token)
        started = time.monotonic()
        view = GenerateView(console, request)
        try:
            with view:
                asyncio.run(follow(url, key, view, request=request))
        except KeyboardInterrupt:
            if view.outcome.job_id:
                stderr.print(
                    f"stopped watching; job {view.outcome.job_id} keeps running "
                    f"(`pressroom jobs show {view.outcome.job_id}`, `pressroom jobs cancel {view.outcome.job_id}`)"
                )
            raise typer.Exit(ExitCode.INTERRUPTED) from None
        outcome = view.outcome
        console.print()
        print_rows(summary(url, key, outcome))
        elapsed = time.monotonic() - started
        if outcome.status != "completed":
            raise ClientError(
                f"job {outcome.job_id} {outcome.failure or outcome.status} (after {elapsed:.0f}s)"
            )
        console.print(Text(f"done in {elapsed:.0f}s", style="green"))
