"""The event envelope and every stored event of DESIGN.md §2-3.

Each event type is one class: a literal `type`, a schema `version` and a typed `data` payload.
`Event` is the discriminated union of all of them; `parse_event` validates raw bytes into it.
The de-duplication key (sent as the `Nats-Msg-Id` header) is deterministic, so an input that is
processed twice publishes a duplicate that the stream drops.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

from .ids import new_event_id
from .jobs import JobRequest, Platform
from .subjects import JOB_ID_PATTERN


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


class Source(Payload):
    title: str
    location: str = Field(description="URL of a web page, or the path of a knowledge-base file.")
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
    location: str


class TokenUsage(Payload):
    model: str
    input_tokens: int = 0
    output_tokens: int = 0


class BlogCompleted(Payload):
    request: JobRequest
    version: int = 1
    title: str
    markdown: str
    word_count: int
    citations: list[Citation] = []
    usage: TokenUsage


class SocialCompleted(Payload):
    platform: Platform
    version: int = 1
    text: str
    characters: int = Field(description="Length as the platform counts it.")
    limit: int


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
        return f"{self.data.stage}:{self.data.call}"


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


def parse_event(raw: bytes | str) -> Event:
    """Validate a stored event from its JSON; raises pydantic.ValidationError with the reason."""
    return EVENT_ADAPTER.validate_json(raw)


def encode_event(event: Envelope) -> bytes:
    return event.model_dump_json().encode()
