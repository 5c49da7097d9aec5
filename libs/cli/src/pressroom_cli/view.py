"""What `pressroom generate` shows while a job runs.

In a terminal: one progress line per stage and the tail of the blog as it is written. Without one (a
pipe, a log, a test): one line per step and the blog text as it streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.progress import BarColumn, Progress, SpinnerColumn, TaskID, TextColumn
from rich.text import Text

from pressroom_contracts.events import (
    BlogCompletedEvent,
    BlogEditedEvent,
    Event,
    ImageCompletedEvent,
    JobCancelledEvent,
    JobCompletedEvent,
    JobFailedEvent,
    PublishChecks,
    ResearchCompletedEvent,
    SocialCompletedEvent,
    SocialEditedEvent,
    StageFailedEvent,
    StageProgressEvent,
    UsageRecordedEvent,
)
from pressroom_contracts.jobs import JobRequest
from pressroom_contracts.protocol import DeltaFrame

LABELS = {"research": "research", "blog": "writing", "social": "social", "image": "image", "job": "job"}


def _count(n: int, thing: str) -> str:
    return f"{n} {thing}{'' if n == 1 else 's'}"


def checks_summary(checks: PublishChecks | None) -> str | None:
    """What the checks before publishing changed in a text, in one line; None when nothing."""
    if checks is None:
        return None
    found = []
    if checks.removed_links:
        found.append(f"{_count(len(checks.removed_links), 'link')} not from research removed")
    if checks.removed_citations:
        found.append(f"{_count(len(checks.removed_citations), 'unsupported citation')} removed")
    if checks.html_tags:
        found.append(f"HTML converted ({', '.join(sorted(set(checks.html_tags)))})")
    if checks.copied_passages:
        found.append(f"{_count(len(checks.copied_passages), 'copied passage')} made quotes")
    if checks.language_matches is False:
        found.append(f"written in {checks.detected_language or '?'}, not {checks.language}")
    elif checks.rewritten_for_language:
        found.append(f"written again for {checks.language}")
    return "; ".join(found) or None


@dataclass
class Outcome:
    """How the job ended, as far as the stream told."""

    job_id: str = ""
    status: str = "running"
    title: str | None = None
    failure: str | None = None
    usage: dict[str, float] = field(default_factory=dict)  # cost per provider call, so a call counts once

    @property
    def cost_usd(self) -> float:
        return sum(self.usage.values())


class GenerateView:
    """A Watcher (pressroom_cli.live) that renders the job and records its outcome."""

    def __init__(self, out: Console, request: JobRequest) -> None:
        self.out = out
        self.request = request
        self.outcome = Outcome()
        self.interactive = out.is_terminal
        self.progress = Progress(
            SpinnerColumn(finished_text="[green]✓[/]"),
            TextColumn("[bold]{task.description:<9}"),
            BarColumn(bar_width=24),
            TextColumn("{task.fields[note]}", markup=False),
            console=out,
        )
        self.tasks: dict[str, TaskID] = {
            "research": self.progress.add_task("research", total=1, note="waiting"),
            "blog": self.progress.add_task("writing", total=request.target_words, note="waiting"),
            "social": self.progress.add_task("social", total=len(request.platforms), note="waiting"),
        }
        if request.image:
            self.tasks["image"] = self.progress.add_task("image", total=1, note="waiting")
        self.blog = ""
        self.social_done: set[str] = set()
        self.live: Live | None = None
        self._open_line = False  # plain mode: streamed text printed without its newline yet

    def __enter__(self) -> GenerateView:
        if self.interactive:
            self.live = Live(self._renderable(), console=self.out, refresh_per_second=12)
            self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.live is not None:
            self.live.update(self._renderable(final=True))
            self.live.__exit__(None, None, None)
            self.live = None
        self._end_line()

    # ---- Watcher --------------------------------------------------------------------------------------

    def accepted(self, job_id: str) -> None:
        self.outcome.job_id = job_id
        self.line("job", f"accepted: {job_id}")

    def notice(self, message: str) -> None:
        self.line("job", message, style="yellow")

    def delta(self, frame: DeltaFrame) -> None:
        if frame.stage != "blog":
            return
        if frame.offset < len(self.blog):  # a retry writes the text again: replace what it rewrites
            self.blog = self.blog[: frame.offset]
            if not self.interactive:
                self._end_line()
                self.out.print(Text("    (the writer started again)", style="yellow"))
        self.blog += frame.text
        if self.interactive:
            words = len(self.blog.split())
            self.note("blog", f"{words} words", completed=words)
        else:
            if not self._open_line:
                self.out.file.write("\n")
            self.out.file.write(frame.text)
            self.out.file.flush()
            self._open_line = True

    def event(self, event: Event) -> None:
        outcome = self.outcome
        match event:
            case StageProgressEvent(data=data):
                self.note(data.stage, data.message)
                self.line(data.stage, data.message, style="dim" if self.interactive else "")
            case ResearchCompletedEvent(data=data):
                count = len(data.sources)
                note = (
                    f"skipped: {data.reason or 'off'}"
                    if data.skipped
                    else f"{count} source{'s' if count != 1 else ''} ({data.provider})"
                )
                self.done("research", note)
            case BlogCompletedEvent(data=data):
                outcome.title = data.title
                self.done("blog", f"“{data.title}”, {data.word_count} words (v{data.version})")
                if found := checks_summary(data.checks):
                    self.line("blog", f"checks: {found}", style="yellow")
            case BlogEditedEvent(data=data):
                outcome.title = data.title
                self.line("blog", f"edited: “{data.title}” (v{data.version})")
            case SocialCompletedEvent(data=data):
                self.social_done.add(data.platform)
                total = len(self.request.platforms)
                self.note(
                    "social",
                    f"{len(self.social_done)}/{total} ({', '.join(sorted(self.social_done))})",
                    completed=len(self.social_done),
                    done=len(self.social_done) >= total,
                )
                found = checks_summary(data.checks)
                self.line(
                    "social",
                    f"{data.platform}: {data.characters}/{data.limit} characters"
                    + (f"; checks: {found}" if found else ""),
                )
            case SocialEditedEvent(data=data):
                self.line("social", f"{data.platform} edited (v{data.version})")
            case ImageCompletedEvent(data=data):
                self.done("image", f"{data.width}x{data.height} ({data.provider})")
            case UsageRecordedEvent(data=data):
                outcome.usage[f"{data.stage}:{data.call}"] = data.cost_usd
            case StageFailedEvent(data=data):
                message = f"{'retrying' if data.retryable else 'failed'} ({data.code}): {data.message}"
                if not data.retryable:
                    self.fail(data.stage, message)
                self.line(data.stage, message, style="yellow" if data.retryable else "red")
            case JobCompletedEvent():
                outcome.status = "completed"
                self.line("job", "completed", style="green")
            case JobFailedEvent(data=data):
                outcome.status = "failed"
                outcome.failure = f"failed at {data.stage}: {data.message} ({data.code})"
                self.fail(data.stage, f"{data.message} ({data.code})")
                self.line("job", outcome.failure, style="red")
            case JobCancelledEvent(data=data):
                outcome.status = "cancelled"
                outcome.failure = f"cancelled: {data.reason}"
                self.line("job", outcome.failure, style="yellow")

    # ---- drawing --------------------------------------------------------------------------------------

    def line(self, stage: str, message: str, style: str = "") -> None:
        text = Text(f"{LABELS.get(stage, stage):>9}  {message}", style=style)
        if self.live is not None:
            self.live.console.print(text)
            return
        self._end_line()
        self.out.print(text, soft_wrap=True)

    def note(self, stage: str, note: str, *, completed: float | None = None, done: bool = False) -> None:
        task = self.tasks.get(stage)
        if task is None:
            return
        update: dict[str, Any] = {"note": note}
        if completed is not None:
            update["completed"] = completed
        if done:
            update["completed"] = self.progress.tasks[task].total
        self.progress.update(task, **update)
        if done:
            self.progress.stop_task(task)
        self._refresh()

    def done(self, stage: str, note: str) -> None:
        self.note(stage, note, done=True)
        self.line(stage, note)

    def fail(self, stage: str, note: str) -> None:
        task = self.tasks.get(stage)
        if task is not None:
            self.progress.update(task, note=note, description=f"[red]{LABELS.get(stage, stage)}[/]")
            self.progress.stop_task(task)
            self._refresh()

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
