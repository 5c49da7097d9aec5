"""The request/reply reads answered by persistence (`query.job`, `query.jobs`): bodies and answers.

The gateway asks, persistence answers; both validate with these models. Errors come back as
{"error": {"code": …, "message": …}} with code not_found or invalid_request.
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from .events import PublishChecks
from .subjects import JOB_ID_PATTERN

_CHECKS = "What the checks before publishing found in this version; none for a person's edit."

MAX_LIMIT = 100


class Origin(StrEnum):
    generated = "generated"
    regenerated = "regenerated"
    edited = "edited"


class JobStatus(StrEnum):
    requested = "requested"
    running = "running"
    completed = "completed"
    failed = "failed"
    cancelled = "cancelled"


# ---- requests -----------------------------------------------------------------------------------------


class _Query(BaseModel):
    model_config = ConfigDict(extra="forbid")


class JobQuery(_Query):
    job_id: Annotated[str, Field(pattern=JOB_ID_PATTERN)]
    owner: str | None = Field(None, description="When given, another owner's job is reported not found.")


class JobsQuery(_Query):
    owner: str | None = None
    status: JobStatus | None = None
    limit: Annotated[int, Field(ge=1, le=MAX_LIMIT)] = 20
    cursor: str | None = Field(None, description="next_cursor of the previous page.")


# ---- answers ------------------------------------------------------------------------------------------


class Failure(BaseModel):
    stage: str
    code: str
    message: str


class JobSummary(BaseModel):
    id: str
    status: JobStatus
    owner: str | None
    topic: str
    title: str | None = Field(description="Title of the latest blog post, once there is one.")
    created_at: datetime
    updated_at: datetime
    completed_at: datetime | None
    failure: Failure | None
    cost_usd: float
    budget_usd: float | None = Field(
        None, description="The job fails once cost_usd exceeds it; None: unlimited."
    )
    cancel_reason: str | None = None


class JobDetail(JobSummary):
    request: dict[str, Any]


class ResearchView(BaseModel):
    version: int
    provider: str
    skipped: bool
    reason: str | None
    notes: str
    sources: list[dict[str, Any]]
    created_at: datetime


class ArtifactVersion(BaseModel):
    version: int
    origin: Origin
    created_at: datetime
    editor: str | None = Field(None, description="Who wrote an edited version.")


class BlogView(BaseModel):
    version: int
    origin: Origin = Origin.generated
    editor: str | None = None
    title: str
    markdown: str
    word_count: int
    citations: list[dict[str, Any]]
    model: str | None = Field(description="None for an edited version.")
    input_tokens: int
    output_tokens: int
    created_at: datetime
    versions: list[ArtifactVersion] = Field([], description="Every version, oldest first.")
    checks: PublishChecks | None = Field(None, description=_CHECKS)


class SocialView(BaseModel):
    platform: str
    version: int
    origin: Origin = Origin.generated
    editor: str | None = None
    text: str
    parts: list[str] = Field([], description="A thread's posts; empty for a single post.")
    characters: int
    limit: int
    created_at: datetime
    versions: list[ArtifactVersion] = Field([], description="Every version, oldest first.")
    checks: PublishChecks | None = Field(None, description=_CHECKS)


class ImageView(BaseModel):
    version: int
    object_key: str
    prompt: str
    width: int
    height: int
    content_type: str
    sha256: str
    size_bytes: int
    provider: str
    origin: Origin = Origin.generated
    variants: list[dict[str, Any]] = Field([], description="Other renditions, e.g. square.")
    created_at: datetime
    versions: list[ArtifactVersion] = Field([], description="Every version, oldest first.")


class UsageTotal(BaseModel):
    calls: int
    input_tokens: int
    output_tokens: int
    images: int
    cost_usd: float


class JobReply(BaseModel):
    job: JobDetail
    research: ResearchView | None
    blog: BlogView | None = Field(description="The latest version.")
    social: dict[str, SocialView] = Field(description="The latest post per platform.")
    images: ImageView | None = Field(description="The latest illustration.")
    usage_total: UsageTotal


class JobsReply(BaseModel):
    jobs: list[JobSummary]
    next_cursor: str | None
