"""`pressroom jobs …`: list, show, export, cancel, regenerate and edit jobs through the REST API."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
import tempfile
from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from pressroom_contracts.jobs import Platform
from pressroom_contracts.queries import BlogView, JobStatus

from .errors import ClientError, UsageError, readable_errors, stderr
from .options import GatewayOption, JobIdArgument, TokenOption
from .rest import JobAnswer, Rest
from .settings import job_path, resolve_gateway, resolve_token

app = typer.Typer(help="Your jobs, through the gateway's REST API.", no_args_is_help=True)
console = Console()

STATUS_STYLES = {"completed": "green", "failed": "red", "cancelled": "yellow", "running": "cyan"}


class ExportFormat(StrEnum):
    md = "md"
    zip = "zip"


class Regenerable(StrEnum):
    blog = "blog"
    social = "social"
    image = "image"


def rest(gateway: str | None, token: str | None, timeout: float = 30.0) -> Rest:
    return Rest(resolve_gateway(gateway), resolve_token(token), timeout=timeout)


@app.command("list")
def list_jobs(
    status: Annotated[JobStatus | None, typer.Option(help="Only jobs in this state.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=100, help="Jobs per page.")] = 20,
    cursor: Annotated[str | None, typer.Option(help="next_cursor of the previous page.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """List your jobs, newest first."""
    with readable_errors(), rest(gateway, token) as api:
        page = api.jobs(status, limit, cursor)
        if as_json:
            sys.stdout.write(page.model_dump_json(indent=2) + "\n")
            return
        if not page.jobs:
            console.print("no jobs" + (f" with status {status.value}" if status else ""))
            return
        table = Table()
        for column in ("id", "status", "created", "cost", "title / topic"):
            table.add_column(column, overflow="fold")
        for job in page.jobs:
            table.add_row(
                job.id,
                Text(job.status.value, style=STATUS_STYLES.get(job.status.value, "")),
                job.created_at.strftime("%Y-%m-%d %H:%M:%S"),
                f"${job.cost_usd:.4f}",
                Text(job.title or job.topic),
            )
        console.print(table)
        if page.next_cursor:
            console.print(f"more: pressroom jobs list --cursor {escape(page.next_cursor)}")


@app.command("show")
def show(
    job_id: JobIdArgument,
    markdown: Annotated[
        bool, typer.Option("--markdown", help="Also print the blog post's Markdown.")
    ] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the API's JSON answer.")] = False,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Show one job: status, cost, the blog, each social post and the illustration."""
    with readable_errors(), rest(gateway, token) as api:
        job = api.job(job_id)
        if as_json:
            sys.stdout.write(job.model_dump_json(indent=2) + "\n")
            return
        print_job(api.gateway, job, markdown=markdown)


def print_job(gateway: str, answer: JobAnswer, *, markdown: bool) -> None:
    job = answer.job
    head = Table(show_header=False, box=None, padding=(0, 1))
    head.add_column(style="bold")
    head.add_column(overflow="fold")
    head.add_row("job", job.id)
    head.add_row("status", Text(job.status.value, style=STATUS_STYLES.get(job.status.value, "")))
    head.add_row("topic", Text(job.topic))
    head.add_row("created", job.created_at.isoformat(timespec="seconds"))
    if job.failure:
        head.add_row("failure", Text(f"{job.failure.stage}: {job.failure.message} ({job.failure.code})"))
    if job.cancel_reason:
        head.add_row("cancelled", Text(job.cancel_reason))
    budget = f" of ${job.budget_usd:.2f} budget" if job.budget_usd else ""
    head.add_row("cost", f"${job.cost_usd:.4f}{budget} (estimate)")
    head.add_row("REST", gateway + job_path(job.id))
    console.print(head)

    if blog := answer.blog:
        versions = len(blog.versions) or 1
        console.print(
            Text(
                f"\nblog  v{blog.version} ({blog.origin.value}, {versions} version{'s' if versions != 1 else ''}), "
                f"{blog.word_count} words",
                style="bold",
            )
        )
        console.print(Text(blog.title))
        if markdown:
            console.print(Panel(Text(blog.markdown), border_style="dim"))
    if answer.social:
        table = Table(title="social posts", title_justify="left")
        for column in ("platform", "characters", "version", "text"):
            table.add_column(column, overflow="fold")
        for platform, post in answer.social.items():
            over = post.characters > post.limit
            table.add_row(
                platform,
                Text(f"{post.characters}/{post.limit}", style="red" if over else "green"),
                f"v{post.version} {post.origin.value}",
                Text(post.text),
            )
        console.print(table)
    if image := answer.images:
        console.print(
            Text(f"\nimage v{image.version} {image.width}x{image.height} ({image.provider})", style="bold")
        )
        console.print(Text(image.url), soft_wrap=True)


@app.command("export")
def export(
    job_id: JobIdArgument,
    fmt: Annotated[
        ExportFormat, typer.Option("--format", "-f", help="md (Markdown) or zip (Markdown and images).")
    ] = ExportFormat.md,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="File to write (default: stdout for md, JOB.zip).")
    ] = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Export a job as Markdown, or as a zip with the illustration."""
    with readable_errors(), rest(gateway, token, timeout=60) as api:
        content = api.export(job_id, fmt.value)
        if output is None and fmt is ExportFormat.md:
            sys.stdout.buffer.write(content)
            return
        target = output or Path(f"pressroom-{job_id}.{fmt.value}")
        target.write_bytes(content)
        stderr.print(f"wrote {target} ({len(content)} bytes)")


@app.command("cancel")
def cancel(
    job_id: JobIdArgument,
    reason: Annotated[str | None, typer.Option(help="Recorded with the cancellation.")] = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Cancel a running job: no provider call starts after it takes effect."""
    with readable_errors(), rest(gateway, token) as api:
        api.cancel(job_id, reason)
        console.print(
            f"cancel requested for {job_id}; `pressroom jobs show {job_id}` shows when it took effect"
        )


@app.command("regenerate")
def regenerate(
    job_id: JobIdArgument,
    stage: Annotated[Regenerable, typer.Argument(help="What to produce again.", show_default=False)],
    platform: Annotated[
        Platform | None, typer.Option("--platform", "-p", help="social only: which post (default: all).")
    ] = None,
    instructions: Annotated[
        str | None, typer.Option(help="What to do differently (at most 500 characters).")
    ] = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Produce the blog, a social post (or all of them) or the image again, as a new version."""
    with readable_errors(), rest(gateway, token) as api:
        if platform is not None and stage is not Regenerable.social:
            raise UsageError("--platform is only for the social stage")
        api.regenerate(job_id, stage.value, platform, instructions)
        what = f"the {platform.value} post" if platform else f"the {stage.value}"
        console.print(
            f"regeneration of {what} requested; `pressroom jobs show {job_id}` shows the new version"
        )


@app.command("edit")
def edit(
    job_id: JobIdArgument,
    what: Annotated[
        str,
        typer.Argument(
            help="blog, or a platform (linkedin, x, threads, facebook, instagram) for its post.",
            show_default=False,
        ),
    ],
    file: Annotated[
        Path | None,
        typer.Option("--file", "-f", help="Read the new text from this file ('-': standard input)."),
    ] = None,
    text: Annotated[str | None, typer.Option(help="The new text (a social post).")] = None,
    title: Annotated[
        str | None, typer.Option(help="The blog post's title (default: its '# ' line, else the current one).")
    ] = None,
    gateway: GatewayOption = None,
    token: TokenOption = None,
) -> None:
    """Replace the blog post or a social post with your own version (stored as a new version).

    Without --file or --text, the current version opens in $EDITOR.
    """
    with readable_errors(), rest(gateway, token) as api:
        if what == "blog":

            def blog() -> BlogView:
                if (current := api.job(job_id).blog) is None:
                    raise ClientError(f"job {job_id} has no blog post yet")
                return current

            markdown = _replacement(file, text, lambda: blog().markdown)
            version = api.edit_blog(job_id, title or _heading(markdown) or blog().title, markdown)
        else:
            platform = _platform(what)

            def post() -> str:
                if (current := api.job(job_id).social.get(platform.value)) is None:
                    raise ClientError(f"job {job_id} has no {platform.value} post yet")
                return current.text

            version = api.edit_social(job_id, platform, _replacement(file, text, post))
        console.print(f"stored as version {version} of the {what} of {job_id}")


def _heading(markdown: str) -> str | None:
    """The post's `# Title` line, as the writer puts it first."""
    first = next((line.strip() for line in markdown.splitlines() if line.strip()), "")
    if not first.startswith("# "):
        return None
    return first[2:].strip() or None


def _platform(name: str) -> Platform:
    try:
        return Platform(name)
    except ValueError:
        choices = ", ".join(p.value for p in Platform)
        raise UsageError(f"{name!r}: expected blog or a platform ({choices})") from None


def _replacement(file: Path | None, text: str | None, current: Callable[[], str]) -> str:
    """The new text: --text, --file (or stdin), else the current version edited in $EDITOR."""
    if text is not None and file is not None:
        raise UsageError("give --text or --file, not both")
    if text is not None:
        value = text
    elif file is not None:
        try:
            value = sys.stdin.read() if str(file) == "-" else file.read_text()
        except OSError as exc:
            raise UsageError(f"cannot read {file}: {exc.strerror}") from None
    else:
        before = current()
        edited = in_editor(before)
        if edited == before:
            raise ClientError("unchanged: nothing was stored")
        value = edited
    if not value.strip():
        raise UsageError("the new text is empty")
    return value


def in_editor(text: str) -> str:
    """`text` after the user edited it in $VISUAL or $EDITOR (vi when neither is set)."""
    editor = shlex.split(os.environ.get("VISUAL") or os.environ.get("EDITOR") or "vi")
    with tempfile.TemporaryDirectory(prefix="pressroom-") as folder:
        path = Path(folder) / "edit.md"
        path.write_text(text)
        try:
            finished = subprocess.run([*editor, str(path)], check=False)
        except OSError as exc:
            raise UsageError(
                f"cannot start the editor {editor[0]!r} ({exc.strerror}); set EDITOR or use --file"
            ) from None
        if finished.returncode != 0:
            raise ClientError(f"the editor exited with status {finished.returncode}: nothing was stored")
        return path.read_text()
