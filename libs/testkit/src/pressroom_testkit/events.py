"""Valid stored events of one job, as the stages would publish them, for tests.

    job = JobEvents.new(JobRequest(topic="Solar power"))
    await publish(job.requested(owner="alice"))
    await publish(job.blog(title="Sunny homes"))

Every builder has defaults that make a plausible event; its arguments change only what a test looks at.
"""

from __future__ import annotations

from typing import Any, TypeVar

from pressroom_contracts.events import (
    BlogCompleted,
    BlogCompletedEvent,
    BlogEdited,
    BlogEditedEvent,
    CancelRequested,
    CancelRequestedEvent,
    Envelope,
    ImageCompleted,
    ImageCompletedEvent,
    ImageVariant,
    JobCancelled,
    JobCancelledEvent,
    JobCompleted,
    JobCompletedEvent,
    JobFailed,
    JobFailedEvent,
    JobRequested,
    JobRequestedEvent,
    Producer,
    ResearchCompleted,
    ResearchCompletedEvent,
    SocialCompleted,
    SocialCompletedEvent,
    SocialEdited,
    SocialEditedEvent,
    Source,
    Stage,
    StageFailed,
    StageFailedEvent,
    StageProgress,
    StageProgressEvent,
    TokenUsage,
    UsageRecorded,
    UsageRecordedEvent,
)
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.jobs import JobRequest, Platform

TEST_PRODUCER = Producer(service="test", replica="test-0")
E = TypeVar("E", bound=Envelope)


class JobEvents:
    """Builds the events of one job: the job's id, its request and the producer they all carry."""

    def __init__(self, job_id: str, request: JobRequest, producer: Producer = TEST_PRODUCER) -> None:
        self.job_id = job_id
        self.request = request
        self.producer = producer

    @classmethod
    def new(cls, request: JobRequest, producer: Producer = TEST_PRODUCER) -> JobEvents:
        """The events of a job with a new id."""
        return cls(new_job_id(), request, producer)

    def envelope(self, cls: type[E], data: Any) -> E:
        """Any event of this job with the given payload."""
        return cls(job_id=self.job_id, producer=self.producer, data=data)

    def requested(self, owner: str | None = None) -> JobRequestedEvent:
        """job.requested, started by `owner`."""
        return self.envelope(JobRequestedEvent, JobRequested(request=self.request, owner=owner))

    def research(self, sources: int = 0) -> ResearchCompletedEvent:
        """research.completed: skipped when `sources` is 0, else that many knowledge-base sources."""
        if not sources:
            data = ResearchCompleted(
                request=self.request, provider="none", skipped=True, reason="research off"
            )
        else:
            data = ResearchCompleted(
                request=self.request,
                provider="knowledge-base",
                sources=[
                    Source(title=f"S{i}", location=f"notes/{i}.md", snippet="…", score=1.0)
                    for i in range(sources)
                ],
            )
        return self.envelope(ResearchCompletedEvent, data)

    def progress(
        self, step: int = 1, message: str = "working", stage: Stage | str = Stage.research
    ) -> StageProgressEvent:
        """stage.progress: step `step` of `stage`."""
        return self.envelope(
            StageProgressEvent, StageProgress(stage=Stage(stage), step=step, message=message)
        )

    def blog(
        self, title: str = "A title", markdown: str | None = None, version: int = 1
    ) -> BlogCompletedEvent:
        """blog.completed; the markdown defaults to a heading with `title` and a one-word body."""
        markdown = f"# {title}\n\nBody." if markdown is None else markdown
        return self.envelope(
            BlogCompletedEvent,
            BlogCompleted(
                request=self.request,
                version=version,
                title=title,
                markdown=markdown,
                word_count=len(markdown.split()),
                usage=TokenUsage(model="m", input_tokens=10, output_tokens=20),
            ),
        )

    def social(self, platform: Platform | str, text: str | None = None) -> SocialCompletedEvent:
        """social.completed for `platform`; the text defaults to "post for <platform>"."""
        text = text or f"post for {platform}"
        return self.envelope(
            SocialCompletedEvent,
            SocialCompleted(platform=Platform(platform), text=text, characters=len(text), limit=280),
        )

    def image(self) -> ImageCompletedEvent:
        """image.completed: a cover stored at `<job_id>/cover.png`."""
        return self.envelope(
            ImageCompletedEvent,
            ImageCompleted(
                object_key=f"{self.job_id}/cover.png",
                prompt="a cover",
                width=1200,
                height=630,
                content_type="image/png",
                sha256="0" * 64,
                size_bytes=1234,
                provider="cover-card",
            ),
        )

    def blog_regenerated(self, version: int = 2, title: str = "A new title") -> BlogCompletedEvent:
        """blog.completed written again on request: `version`, flagged regenerated."""
        markdown = f"# {title}\n\nBody again."
        return self.envelope(
            BlogCompletedEvent,
            BlogCompleted(
                request=self.request,
                version=version,
                regenerated=True,
                title=title,
                markdown=markdown,
                word_count=len(markdown.split()),
                usage=TokenUsage(model="m", input_tokens=10, output_tokens=20),
            ),
        )

    def blog_edited(
        self,
        version: int = 2,
        title: str = "An edited title",
        markdown: str | None = None,
        editor: str = "alice",
    ) -> BlogEditedEvent:
        """blog.edited: `editor` replaced the post as `version`."""
        markdown = f"# {title}\n\nEdited body." if markdown is None else markdown
        return self.envelope(
            BlogEditedEvent,
            BlogEdited(
                version=version,
                title=title,
                markdown=markdown,
                word_count=len(markdown.split()),
                editor=editor,
            ),
        )

    def social_regenerated(
        self,
        platform: Platform | str,
        version: int = 2,
        text: str | None = None,
        parts: list[str] | None = None,
    ) -> SocialCompletedEvent:
        """social.completed for `platform` at `version` (an X thread when `parts` are given)."""
        parts = parts or []
        text = text or ("\n\n".join(parts) if parts else f"post {version} for {platform}")
        longest = max((len(p) for p in parts), default=len(text))
        return self.envelope(
            SocialCompletedEvent,
            SocialCompleted(
                platform=Platform(platform),
                version=version,
                text=text,
                parts=parts,
                characters=longest,
                limit=280,
            ),
        )

    def social_edited(
        self, platform: Platform | str, version: int = 2, text: str | None = None, editor: str = "alice"
    ) -> SocialEditedEvent:
        """social.edited: `editor` replaced the post for `platform` as `version`."""
        text = text or f"edited post for {platform}"
        return self.envelope(
            SocialEditedEvent,
            SocialEdited(
                platform=Platform(platform), version=version, text=text, characters=len(text), limit=280,
                editor=editor,
            ),
        )  # fmt: skip

    def image_regenerated(self, version: int = 2) -> ImageCompletedEvent:
        """image.completed at `version`: a cover at `<job_id>/cover-<version>.png` and its square variant."""
        return self.envelope(
            ImageCompletedEvent,
            ImageCompleted(
                version=version,
                object_key=f"{self.job_id}/cover-{version}.png",
                prompt="another cover",
                width=1200,
                height=630,
                content_type="image/png",
                sha256="1" * 64,
                size_bytes=2345,
                provider="cover-card",
                variants=[
                    ImageVariant(
                        name="square",
                        object_key=f"{self.job_id}/cover-{version}-square.png",
                        width=1080,
                        height=1080,
                        sha256="2" * 64,
                        size_bytes=3456,
                    )
                ],
            ),
        )

    def cancel_requested(
        self, reason: str = "cancelled by the user", requested_by: str = "alice"
    ) -> CancelRequestedEvent:
        """cancel.requested, as the gateway publishes it."""
        return self.envelope(CancelRequestedEvent, CancelRequested(reason=reason, requested_by=requested_by))

    def usage(
        self,
        call: str = "draft",
        cost: float = 0.01,
        input_tokens: int = 5,
        output_tokens: int = 7,
        report: int = 1,
    ) -> UsageRecordedEvent:
        """usage.recorded: one model call of the blog stage (its `report`-th report while it runs)."""
        return self.envelope(
            UsageRecordedEvent,
            UsageRecorded(
                stage=Stage.blog, call=call, report=report, provider="openai", model="m",
                input_tokens=input_tokens, output_tokens=output_tokens, cost_usd=cost,
            ),
        )  # fmt: skip

    def stage_failed(
        self, stage: Stage = Stage.blog, code: str = "provider_auth", message: str = "no key"
    ) -> StageFailedEvent:
        """stage.failed: a stage gave up (not retryable, first attempt)."""
        return self.envelope(
            StageFailedEvent,
            StageFailed(stage=stage, code=code, message=message, retryable=False, attempt=1),
        )

    def job_completed(self, title: str = "A title") -> JobCompletedEvent:
        """job.completed, as persistence announces it: the blog title, every platform and the cover."""
        return self.envelope(
            JobCompletedEvent,
            JobCompleted(
                blog_title=title,
                platforms=list(self.request.platforms),
                image_key=f"{self.job_id}/cover.png",
            ),
        )

    def job_failed(
        self,
        message: str = "the model is unavailable",
        stage: Stage = Stage.blog,
        code: str = "provider_unavailable",
    ) -> JobFailedEvent:
        """job.failed, as persistence announces it after a stage failed."""
        return self.envelope(JobFailedEvent, JobFailed(stage=stage, code=code, message=message))

    def job_cancelled(self, reason: str = "cancelled by the user") -> JobCancelledEvent:
        """job.cancelled."""
        return self.envelope(JobCancelledEvent, JobCancelled(reason=reason))

    def full_run(self) -> list[Envelope]:
        """Every event of a successful job up to its last artifact, in a plausible order."""
        return [
            self.requested(owner="alice"),
            self.progress(1),
            self.research(),
            self.usage("draft", 0.0125),
            self.blog(),
            *[self.social(p) for p in self.request.platforms],
            self.image(),
        ]
