"""The event envelope and every stored event (docs/architecture.md).

Each event type is one class: a literal `type`, a schema `version` and a typed `data` payload.
`Event` is the discriminated union of all of them; `parse_event` validates raw bytes into it.
The de-duplication key (sent as the `Nats-Msg-Id` header) is deterministic, so an input that is
processed twice publishes a duplicate that the stream drops.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, TypeAdapter

from .ids import new_event_id
from .jobs import JobRequest, Platform
from .subjects import JOB_ID_PATTERN
from .voice import VoiceProfile


class Stage(StrEnum):
    research = "research"
    blog = "blog"
    social = "social"
    image = "image"
    job = "job"


class Payload(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Producer(BaseModel):
    model_config = ConfigDict(extra="forbid")

    service: str
    replica: str


# ---- payloads -------------------------------------------------------------------------------------------


class JobRequested(Payload):
    request: JobRequest
    owner: str | None = Field(default=None, description="The client that started the job.")
    voice: VoiceProfile | None = Field(default=None, description="The owner's brand voice, for every prompt.")
    link_template: str | None = Field(
        default=None, description="The post's public address with {slug}: fills {link} in social posts."
    )


_URL = re.compile(r"^[a-z][a-z0-9+.-]*://", re.IGNORECASE)
_SERVER_PATH = re.compile(r"^(?:file:|/|~|[a-z]:[\\/])|(?:^|[\\/])\.\.(?:[\\/]|$)", re.IGNORECASE)


def public_location(value: str) -> str:
    """A URL, or a document's name in a knowledge folder (`guides/heat.pdf#page=4`). A path on a server
    is never shown to a reader: it is cut to the document's file name."""
    value = value.strip()
    if _URL.match(value) and not value.lower().startswith("file:"):
        return value
    if _SERVER_PATH.search(value):
        path, hash_, fragment = value.partition("#")
        name = re.split(r"[\\/]", path.rstrip("/\\"))[-1]
        return name + hash_ + fragment
    return value


PublicLocation = Annotated[
    str,
    AfterValidator(public_location),
    Field(
        description="URL of a web page, or a knowledge-base document's name and page (never a server path)."
    ),
]


class Source(Payload):
    title: str
    location: PublicLocation
    snippet: str
    score: float


class ResearchCompleted(Payload):
    request: JobRequest
    sources: list[Source] = []
    notes: str = ""
    skipped: bool = False
    reason: str | None = Field(default=None, description="Why research was skipped or found nothing.")
    provider: str = Field(description="tavily, knowledge-base or none")


class Citation(Payload):
    number: int = Field(ge=1, description="The [n] marker used in the markdown.")
    title: str
    location: PublicLocation


class TokenUsage(Payload):
    model: str
    input_tokens: int = 0
    output_tokens: int = 0


class CopiedPassage(Payload):
    source: int = Field(ge=1, description="The [n] of the source the words were copied from.")
    words: int = Field(description="How many consecutive words were copied.")
    excerpt: str = Field(description="The copied words (now a quote with its citation).")


class PublishChecks(Payload):
    """What the checks before publishing found in a text, and did about it."""

    html_tags: list[str] = Field(default=[], description="HTML tags the model wrote: converted or removed.")
    removed_links: list[str] = Field(default=[], description="Links research did not return: removed.")
    removed_citations: list[int] = Field(
        default=[], description="[n] markers removed: no such source, or a sentence it does not support."
    )
    copied_passages: list[CopiedPassage] = Field(default=[], description="Long verbatim copies: now quotes.")
    language: str = Field(description="The language asked for (BCP 47).")
    detected_language: str | None = Field(default=None, description="ISO 639-1; None: too short to tell.")
    language_confidence: float | None = None
    language_matches: bool | None = Field(default=None, description="False: the text is marked as such.")
    rewritten_for_language: bool = Field(default=False, description="Written again once for the language.")


class SeoPack(Payload):
    """What a page needs to be found and shared: search snippet, address, social cards, structured data."""

    title: str = Field(max_length=60, description="The SEO title (≤ 60 characters).")
    meta_description: str = Field(max_length=155, description="The meta description (≤ 155 characters).")
    slug: str = Field(pattern=r"^[a-z0-9]+(?:-[a-z0-9]+)*$", description="The post's address, ASCII.")
    keywords: list[str] = []
    reading_minutes: int = Field(ge=1)
    open_graph: dict[str, str] = Field(default={}, description="og:* properties, e.g. og:title.")
    twitter: dict[str, str] = Field(default={}, description="twitter:* card properties.")
    json_ld: dict[str, Any] = Field(default={}, description="A schema.org Article, as JSON-LD.")


class OutlineSection(Payload):
    heading: str
    sources: list[int] = Field(default=[], description="The [n] sources the section was planned to use.")


class BlogCompleted(Payload):
    request: JobRequest
    version: int = 1
    regenerated: bool = Field(
        default=False, description="Written again on request: posts and image are not redone from it."
    )
    title: str
    markdown: str
    word_count: int
    citations: list[Citation] = []
    outline: list[OutlineSection] = Field(default=[], description="The plan the post was written from.")
    checks: PublishChecks | None = Field(default=None, description="What the checks before publishing found.")
    seo: SeoPack | None = None
    usage: TokenUsage


class SocialCompleted(Payload):
    platform: Platform
    version: int = 1
    text: str = Field(description="The post; a thread's posts joined by blank lines.")
    parts: list[str] = Field(default=[], description="A thread's posts, each within the limit.")
    characters: int = Field(description="Length as the platform counts it (a thread: its longest post).")
    limit: int
    checks: PublishChecks | None = Field(default=None, description="What the checks before publishing found.")


class BlogEdited(Payload):
    """A person replaced the blog post: stored as a new version, nothing is regenerated from it."""

    version: int
    title: str
    markdown: str
    word_count: int
    editor: str | None = None


class SocialEdited(Payload):
    platform: Platform
    version: int
    text: str
    characters: int
    limit: int
    editor: str | None = None


class ImageVariant(Payload):
    name: str = Field(description="e.g. square")
    object_key: str
    width: int
    height: int
    sha256: str
    size_bytes: int


class ImageCompleted(Payload):
    version: int = 1
    object_key: str
    prompt: str
    width: int
    height: int
    content_type: str
    sha256: str
    size_bytes: int
    provider: str
    variants: list[ImageVariant] = []


class RegenerateRequested(Payload):
    """Do one stage again (e.g. only the X post, or only the image) without redoing the others."""

    stage: Stage
    platform: Platform | None = Field(default=None, description="For the social stage: which post.")
    instructions: str | None = Field(default=None, max_length=500)
    requested_by: str | None = None


class CancelRequested(Payload):
    reason: str = "cancelled by the user"
    requested_by: str | None = None


class StageProgress(Payload):
    stage: Stage
    step: int = Field(ge=1, description="Order of this step within the stage's attempt.")
    message: str


class StageFailed(Payload):
    stage: Stage
    code: str
    message: str
    retryable: bool
    attempt: int


class UsageRecorded(Payload):
    stage: Stage
    call: str = Field(description="Which call of the stage this was, unique within the job.")
    report: int = Field(
        default=1,
        ge=1,
        description="A call still running is reported as it goes, with a rising number; the highest "
        "report of a call is its usage so far, the last one all of it.",
    )
    provider: str
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    images: int = 0
    cost_usd: float = 0.0


class JobCompleted(Payload):
    blog_title: str
    platforms: list[Platform]
    image_key: str | None = None


class JobFailed(Payload):
    stage: Stage
    code: str
    message: str


class JobCancelled(Payload):
    reason: str = "cancelled by the user"


# ---- envelope -------------------------------------------------------------------------------------------


def _now() -> datetime:
    return datetime.now(UTC)


class Envelope(BaseModel):
    """Fields every stored event carries."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(default_factory=new_event_id, description="Sortable unique id (UUIDv7).")
    version: int = 1
    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)]
    occurred_at: datetime = Field(default_factory=_now)
    producer: Producer
    causation_id: str | None = Field(default=None, description="Id of the event that caused this one.")
    attempt: int = Field(default=1, ge=1, description="Delivery attempt of the input that produced it.")

    type: ClassVar[str]
    data: Any

    def dedup_key(self) -> str:
        """`<job>:<type>:<qualifier>`; the qualifier names the artifact and its version."""
        return f"{self.job_id}:{self.type}:{self.dedup_qualifier()}"

    def dedup_qualifier(self) -> str:
        return "1"


class JobRequestedEvent(Envelope):
    type: Literal["job.requested"] = "job.requested"  # type: ignore[misc]
    data: JobRequested


class ResearchCompletedEvent(Envelope):
    type: Literal["research.completed"] = "research.completed"  # type: ignore[misc]
    data: ResearchCompleted


class BlogCompletedEvent(Envelope):
    type: Literal["blog.completed"] = "blog.completed"  # type: ignore[misc]
    data: BlogCompleted

    def dedup_qualifier(self) -> str:
        return str(self.data.version)


class SocialCompletedEvent(Envelope):
    type: Literal["social.completed"] = "social.completed"  # type: ignore[misc]
    data: SocialCompleted

    def dedup_qualifier(self) -> str:
        return f"{self.data.platform}:{self.data.version}"


class ImageCompletedEvent(Envelope):
    type: Literal["image.completed"] = "image.completed"  # type: ignore[misc]
    data: ImageCompleted

    def dedup_qualifier(self) -> str:
        return str(self.data.version)


class BlogEditedEvent(Envelope):
    type: Literal["blog.edited"] = "blog.edited"  # type: ignore[misc]
    data: BlogEdited

    def dedup_qualifier(self) -> str:
        return str(self.data.version)


class SocialEditedEvent(Envelope):
    type: Literal["social.edited"] = "social.edited"  # type: ignore[misc]
    data: SocialEdited

    def dedup_qualifier(self) -> str:
        return f"{self.data.platform}:{self.data.version}"


class RegenerateRequestedEvent(Envelope):
    type: Literal["regenerate.requested"] = "regenerate.requested"  # type: ignore[misc]
    data: RegenerateRequested

    def dedup_qualifier(self) -> str:
        return self.id  # every request is its own


class CancelRequestedEvent(Envelope):
    type: Literal["cancel.requested"] = "cancel.requested"  # type: ignore[misc]
    data: CancelRequested


class StageProgressEvent(Envelope):
    type: Literal["stage.progress"] = "stage.progress"  # type: ignore[misc]
    data: StageProgress

    def dedup_qualifier(self) -> str:
        return f"{self.data.stage}:{self.attempt}:{self.data.step}"


class StageFailedEvent(Envelope):
    type: Literal["stage.failed"] = "stage.failed"  # type: ignore[misc]
    data: StageFailed

    def dedup_qualifier(self) -> str:
        return str(self.data.stage)


class UsageRecordedEvent(Envelope):
    type: Literal["usage.recorded"] = "usage.recorded"  # type: ignore[misc]
    data: UsageRecorded

    def dedup_qualifier(self) -> str:
        return f"{self.data.stage}:{self.data.call}:{self.data.report}"


class JobCompletedEvent(Envelope):
    type: Literal["job.completed"] = "job.completed"  # type: ignore[misc]
    data: JobCompleted


class JobFailedEvent(Envelope):
    type: Literal["job.failed"] = "job.failed"  # type: ignore[misc]
    data: JobFailed


class JobCancelledEvent(Envelope):
    type: Literal["job.cancelled"] = "job.cancelled"  # type: ignore[misc]
    data: JobCancelled


EVENT_CLASSES: tuple[type[Envelope], ...] = (
    JobRequestedEvent,
    ResearchCompletedEvent,
    BlogCompletedEvent,
    SocialCompletedEvent,
    ImageCompletedEvent,
    BlogEditedEvent,
    SocialEditedEvent,
    RegenerateRequestedEvent,
    CancelRequestedEvent,
    StageProgressEvent,
    StageFailedEvent,
    UsageRecordedEvent,
    JobCompletedEvent,
    JobFailedEvent,
    JobCancelledEvent,
)

EVENT_TYPES: dict[str, type[Envelope]] = {cls.model_fields["type"].default: cls for cls in EVENT_CLASSES}

Event = Annotated[
    JobRequestedEvent
    | ResearchCompletedEvent
    | BlogCompletedEvent
    | SocialCompletedEvent
    | ImageCompletedEvent
    | BlogEditedEvent
    | SocialEditedEvent
    | RegenerateRequestedEvent
    | CancelRequestedEvent
    | StageProgressEvent
    | StageFailedEvent
    | UsageRecordedEvent
    | JobCompletedEvent
    | JobFailedEvent
    | JobCancelledEvent,
    Field(discriminator="type"),
]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)

TERMINAL_TYPES = frozenset({"job.completed", "job.failed", "job.cancelled"})
# After one of these no provider call starts for the job (a completed job may still be regenerated).
STOPPED_TYPES = ("job.failed", "job.cancelled")


def parse_event(raw: bytes | str) -> Event:
    """Validate a stored event from its JSON; raises pydantic.ValidationError with the reason."""
    return EVENT_ADAPTER.validate_json(raw)


def encode_event(event: Envelope) -> bytes:
    return event.model_dump_json().encode()
