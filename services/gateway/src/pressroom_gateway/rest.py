"""REST under /v1: create, list, get, cancel, edit, regenerate and export jobs.

Translation only: each route reads its request, calls the application layer (jobs.py), which decides
and publishes, and shapes the answer. Writes answer 202 once the stream acknowledged their event; reads
ask persistence with the client as owner, so another client's job is answered like a missing one (404).
Every refusal is `{"error": {"code": …, "message": …}}` with a matching status (errors.py).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response
from pydantic import BaseModel, Field

from pressroom_contracts.events import SeoPack
from pressroom_contracts.jobs import (
    BlogEdit,
    CancelRequest,
    JobRequest,
    Platform,
    RegenerateRequest,
    SocialEdit,
)
from pressroom_contracts.queries import MAX_LIMIT, BlogView, ImageView, JobReply, JobsReply, JobStatus

from . import export
from .deps import CurrentClient, JobId, JobsDep, ServicesDep
from .errors import error_responses
from .idempotency import MAX_KEY_LENGTH
from .presign import Storage

router = APIRouter(tags=["jobs"])
router.include_router(export.router)


# ---- bodies and answers -------------------------------------------------------------------------------


class JobCreated(BaseModel):
    job_id: str
    events_url: str = Field(description="Server-Sent Events of the job (also reachable over /v1/ws).")
    job_url: str = Field(description="GET it for the job's state and artifacts.")


class JobLinks(BaseModel):
    events: str
    export_md: str
    export_zip: str


class BlogOut(BlogView):
    html: str = Field(description="The markdown rendered to sanitised HTML.")
    seo: SeoPack = Field(
        description="Search title and snippet, slug, keywords, social cards, structured data."
    )


class ImageVariantOut(BaseModel):
    name: str
    object_key: str
    width: int | None = None
    height: int | None = None
    sha256: str | None = None
    size_bytes: int | None = None
    url: str = Field(description="Presigned GET URL (expires at url_expires_at).")


class ImageOut(ImageView):
    url: str = Field(description="Presigned GET URL of the image; the bucket itself is private.")
    url_expires_at: datetime
    variants: list[ImageVariantOut] = []  # type: ignore[assignment,unused-ignore]  # the stored variants, with their URLs


class JobOut(JobReply):
    blog: BlogOut | None = Field(description="The latest version, with its HTML.")
    images: ImageOut | None = Field(description="The latest illustration, with presigned URLs.")
    links: JobLinks


class Accepted(BaseModel):
    job_id: str
    status: Literal["accepted"] = "accepted"


class VersionAccepted(BaseModel):
    job_id: str
    version: int = Field(description="The version the edit is stored as.")


# ---- helpers ------------------------------------------------------------------------------------------


def _paths(request: Request, job_id: str) -> tuple[str, str]:
    base = f"{request.scope.get('root_path', '')}/v1/jobs/{job_id}"
    return base, f"{base}/events"


# ---- create -------------------------------------------------------------------------------------------


@router.post(
    "/v1/jobs",
    status_code=202,
    response_model=JobCreated,
    summary="Start a job",
    description="Publishes job.requested and answers once the stream has it. With an `Idempotency-Key` "
    "header, repeating the request (same client, same key, within 24 hours) answers with the same job "
    "instead of starting another; the same key with a different request is refused.",
    responses=error_responses(413, 401, 422, 429, 503),
)
async def create_job(
    request: Request,
    response: Response,
    job: Annotated[JobRequest, Body(description="The job's options.")],
    client: CurrentClient,
    jobs: JobsDep,
    idempotency_key: Annotated[
        str | None,
        Header(
            alias="Idempotency-Key",
            min_length=1,
            max_length=MAX_KEY_LENGTH,
            description="Any unique string per intended job, e.g. a UUID.",
        ),
    ] = None,
) -> JobCreated:
    started = await jobs.start(client, job, idempotency_key=idempotency_key)
    if started.replayed:
        response.headers["Idempotent-Replayed"] = "true"
    job_url, events_url = _paths(request, started.job_id)
    response.headers["Location"] = job_url
    return JobCreated(job_id=started.job_id, events_url=events_url, job_url=job_url)


# ---- read ---------------------------------------------------------------------------------------------


def _utc(value: datetime | None) -> datetime | None:
    if value is not None and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value


@router.get(
    "/v1/jobs",
    response_model=JobsReply,
    summary="List your jobs",
    description="Newest first (created_at, then id, descending: a stable order). Pass `next_cursor` "
    "back as `cursor`, with the same filters, for the next page; null means there is none. "
    "`created_after` and `created_before` are exclusive; a time without a zone is UTC.",
    responses=error_responses(401, 422, 503),
)
async def list_jobs(
    client: CurrentClient,
    jobs: JobsDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
    created_after: Annotated[datetime | None, Query(description="Only jobs created after this.")] = None,
    created_before: Annotated[datetime | None, Query(description="Only jobs created before this.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page.")
    ] = None,
) -> JobsReply:
    return await jobs.list(
        client,
        status=status,
        created_after=_utc(created_after),
        created_before=_utc(created_before),
        limit=limit,
        cursor=cursor,
    )


async def _image_out(image: ImageView, storage: Storage) -> ImageOut:
    url, expires_at = await storage.presign(image.object_key)
    variants = []
    for variant in image.variants:
        key = variant.get("object_key")
        if not isinstance(key, str):
            continue
        variant_url, _ = await storage.presign(key)
        variants.append(ImageVariantOut.model_validate({**variant, "url": variant_url}))
    data = image.model_dump()
    data["variants"] = variants
    return ImageOut(**data, url=url, url_expires_at=expires_at)


@router.get(
    "/v1/jobs/{job_id}",
    response_model=JobOut,
    summary="Get a job",
    description="The job with its latest artifacts: research, the blog (markdown and sanitised HTML), "
    "each social post, the illustration with presigned URLs, usage and cost.",
    responses=error_responses(401, 404, 503),
)
async def get_job(request: Request, job_id: JobId, client: CurrentClient, services: ServicesDep) -> JobOut:
    job = await services.jobs.load(client, job_id)
    blog = (
        BlogOut(**job.blog.model_dump(), html=export.render_html(job.blog.markdown), seo=export.job_seo(job))
        if job.blog
        else None
    )
    images = await _image_out(job.images, services.storage) if job.images else None
    base, events = _paths(request, job_id)
    return JobOut(
        job=job.job,
        research=job.research,
        blog=blog,
        social=job.social,
        images=images,
        usage_total=job.usage_total,
        links=JobLinks(events=events, export_md=f"{base}/export.md", export_zip=f"{base}/export.zip"),
    )


# ---- control ------------------------------------------------------------------------------------------


@router.post(
    "/v1/jobs/{job_id}/cancel",
    status_code=202,
    response_model=Accepted,
    summary="Cancel a job",
    description="Publishes cancel.requested; the job's `job.cancelled` event follows when it takes "
    "effect. A job that already finished is refused (409).",
    responses=error_responses(401, 404, 409, 503),
)
async def cancel_job(
    job_id: JobId,
    client: CurrentClient,
    jobs: JobsDep,
    body: Annotated[CancelRequest | None, Body()] = None,
) -> Accepted:
    await jobs.cancel(client, job_id, body)
    return Accepted(job_id=job_id)


@router.post(
    "/v1/jobs/{job_id}/regenerate",
    status_code=202,
    response_model=Accepted,
    summary="Regenerate one stage",
    description="Publishes regenerate.requested: the blog, one social post (or all of them), or the "
    "illustration is produced again as a new version; nothing else is redone. Refused (409) before the "
    "stage produced its first version or once the job failed or was cancelled; (422 budget_exceeded) "
    "when it would take the job past its budget; (429) past the client's quota, which it counts like "
    "a job.",
    responses=error_responses(413, 401, 404, 409, 422, 429, 503),
)
async def regenerate(
    job_id: JobId, body: RegenerateRequest, client: CurrentClient, jobs: JobsDep
) -> Accepted:
    await jobs.regenerate(client, job_id, body)
    return Accepted(job_id=job_id)


# ---- edits --------------------------------------------------------------------------------------------


@router.put(
    "/v1/jobs/{job_id}/blog",
    status_code=202,
    response_model=VersionAccepted,
    summary="Replace the blog post",
    description="Stores the text as a new version (blog.edited, with you as editor); nothing is "
    "regenerated from it. Refused (409) while the job has no blog post yet; counted in the client's "
    "quota like a job (429).",
    responses=error_responses(413, 401, 404, 409, 422, 429, 503),
)
async def edit_blog(job_id: JobId, body: BlogEdit, client: CurrentClient, jobs: JobsDep) -> VersionAccepted:
    return VersionAccepted(job_id=job_id, version=await jobs.edit_blog(client, job_id, body))


@router.put(
    "/v1/jobs/{job_id}/social/{platform}",
    status_code=202,
    response_model=VersionAccepted,
    summary="Replace a social post",
    description="Stores the text as a new version of the platform's post (social.edited). Refused (422) "
    "over the platform's limit, (409) while the job has no post for the platform yet; counted in the "
    "client's quota like a job (429).",
    responses=error_responses(413, 401, 404, 409, 422, 429, 503),
)
async def edit_social(
    job_id: JobId, platform: Platform, body: SocialEdit, client: CurrentClient, jobs: JobsDep
) -> VersionAccepted:
    return VersionAccepted(job_id=job_id, version=await jobs.edit_social(client, job_id, platform, body))
