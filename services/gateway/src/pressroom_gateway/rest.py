"""REST under /v1 (issue 4): create, list, get, cancel, edit, regenerate and export jobs.

Writes are events: the gateway validates, checks ownership and publishes (job.requested,
cancel.requested, blog.edited, social.edited, regenerate.requested), answering 202 once the stream
acknowledged; the stages and persistence act on them. Reads ask persistence (query.job, query.jobs) with
the client as owner, so another client's job is answered exactly like a missing one (404).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Body, Header, Query, Request, Response
from nats.js.api import PubAck
from nats.js.errors import NotFoundError
from pydantic import BaseModel, Field, field_validator

from pressroom_contracts import subjects
from pressroom_contracts.events import (
    STOPPED_TYPES,
    TERMINAL_TYPES,
    BlogCompletedEvent,
    BlogEdited,
    BlogEditedEvent,
    CancelRequested,
    CancelRequestedEvent,
    Envelope,
    RegenerateRequested,
    RegenerateRequestedEvent,
    SocialCompletedEvent,
    SocialEdited,
    SocialEditedEvent,
    Stage,
    encode_event,
)
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.jobs import JobRequest, Platform
from pressroom_contracts.platforms import LIMITS, count
from pressroom_contracts.queries import (
    MAX_LIMIT,
    BlogView,
    ImageView,
    JobReply,
    JobsQuery,
    JobsReply,
    JobStatus,
)
from pressroom_runtime.history import recorded
from pressroom_runtime.logs import get_logger

from . import export, limits, moderation, profiles
from .api import (
    ApiError,
    ApiRoute,
    BusDep,
    CurrentClient,
    IdempotencyDep,
    JobId,
    QueriesDep,
    StorageDep,
    error_responses,
    load_job,
    owned_request,
    require_owned,
)
from .auth import Client
from .bus import Bus
from .idempotency import MAX_KEY_LENGTH, Record, fingerprint
from .presign import Storage
from .queries import QueryClient, QueryError

log = get_logger(__name__)

router = APIRouter(route_class=ApiRoute, tags=["jobs"])
router.include_router(export.router)

# What a stage publishes: it must have produced something before it can produce it again.
PRODUCED_BY = {"blog": "blog.completed", "social": "social.completed", "image": "image.completed"}
# A concurrent edit may take the version we computed: try the next one, a few times.
EDIT_ATTEMPTS = 5
# created_before is applied here (query.jobs has no date filter): at most this many pages are skipped
# per request before an empty page with a cursor is answered.
MAX_SKIPPED_PAGES = 10


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


class CancelBody(BaseModel):
    reason: Annotated[str, Field(min_length=1, max_length=200)] = "cancelled by the user"


class BlogEdit(BaseModel):
    title: Annotated[str, Field(min_length=1, max_length=300)]
    markdown: Annotated[str, Field(min_length=1, max_length=200_000)]

    @field_validator("title")
    @classmethod
    def _title(cls, value: str) -> str:
        value = " ".join(value.split())
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("markdown")
    @classmethod
    def _markdown(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class SocialEdit(BaseModel):
    text: Annotated[str, Field(min_length=1, max_length=70_000)]

    @field_validator("text")
    @classmethod
    def _not_blank(cls, value: str) -> str:
        if not value.strip():
            raise ValueError("must not be blank")
        return value


class RegenerateBody(BaseModel):
    stage: Literal["blog", "social", "image"]
    platform: Platform | None = Field(None, description="social only: which post; all when omitted.")
    instructions: Annotated[str | None, Field(max_length=500)] = None


# ---- helpers ------------------------------------------------------------------------------------------


def _paths(request: Request, job_id: str) -> tuple[str, str]:
    base = f"{request.scope.get('root_path', '')}/v1/jobs/{job_id}"
    return base, f"{base}/events"


async def _publish(bus: Bus, event: Envelope) -> PubAck:
    """Publishes with the event's de-duplication key and returns the whole ack (`duplicate` included)."""
    ack = await bus.broker.publish(
        encode_event(event),
        subject=subjects.content(event.job_id, event.type),
        headers={"Nats-Msg-Id": event.dedup_key()},
        stream=subjects.STREAM,
        timeout=bus.settings.publish_timeout,
    )
    if ack is None:  # pragma: no cover - publish with stream= always acknowledges
        raise ApiError(503, "unavailable", "the message bus did not acknowledge; try again")
    return ack


async def _stored_last(bus: Bus, job_id: str, event_type: str) -> int | None:
    """Stream sequence of the job's latest event of this type, or None."""
    try:
        msg = await bus.js.get_last_msg(subjects.STREAM, subjects.content(job_id, event_type))
    except NotFoundError:
        return None
    return msg.seq


async def _admit(request: JobRequest, client: Client) -> None:
    """Moderation (TopicRefused: 422 topic_refused), then the client's job quota (RateLimited: 429 with
    Retry-After): a refused topic costs no quota. Both are GatewayErrors the app answers."""
    await moderation.moderate(request)
    await limits.check_job_quota(client)


# ---- create -------------------------------------------------------------------------------------------


@router.post(
    "/v1/jobs",
    status_code=202,
    response_model=JobCreated,
    summary="Start a job",
    description="Publishes job.requested and answers once the stream has it. With an `Idempotency-Key` "
    "header, repeating the request (same client, same key, within 24 hours) answers with the same job "
    "instead of starting another; the same key with a different request is refused.",
    responses=error_responses(401, 422, 429, 503),
)
async def create_job(
    request: Request,
    response: Response,
    job: Annotated[JobRequest, Body(description="The job's options.")],
    client: CurrentClient,
    bus: BusDep,
    idempotency: IdempotencyDep,
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
    wanted = fingerprint(job)
    if idempotency_key is not None:
        record = await idempotency.lookup(client.id, idempotency_key)
        if record is not None:
            return await _replay(request, response, bus, client, job, record, wanted)
    await _admit(job, client)
    job_id = new_job_id()
    if idempotency_key is not None:
        record = await idempotency.claim(client.id, idempotency_key, Record(job_id, wanted))
        if record.job_id != job_id:  # a concurrent request with the same key won
            return await _replay(request, response, bus, client, job, record, wanted)
    await bus.start_job(job, client.id, job_id=job_id)
    return _created(request, response, job_id)


async def _replay(
    request: Request,
    response: Response,
    bus: Bus,
    client: Client,
    job: JobRequest,
    record: Record,
    wanted: str,
) -> JobCreated:
    if record.fingerprint != wanted:
        raise ApiError(
            422, "idempotency_key_reused", "this Idempotency-Key was already used with a different request"
        )
    if not await bus.job_exists(record.job_id):
        # The first request recorded the key but its publish failed or has not landed yet: finish it
        # (same job id, same Nats-Msg-Id: the stream keeps one job.requested).
        await bus.start_job(job, client.id, job_id=record.job_id)
    response.headers["Idempotent-Replayed"] = "true"
    return _created(request, response, record.job_id)


def _created(request: Request, response: Response, job_id: str) -> JobCreated:
    job_url, events_url = _paths(request, job_id)
    response.headers["Location"] = job_url
    return JobCreated(job_id=job_id, events_url=events_url, job_url=job_url)


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
    queries: QueriesDep,
    status: Annotated[JobStatus | None, Query(description="Only jobs in this state.")] = None,
    created_after: Annotated[datetime | None, Query(description="Only jobs created after this.")] = None,
    created_before: Annotated[datetime | None, Query(description="Only jobs created before this.")] = None,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 20,
    cursor: Annotated[
        str | None, Query(max_length=500, description="next_cursor of the previous page.")
    ] = None,
) -> JobsReply:
    after, before = _utc(created_after), _utc(created_before)
    for _ in range(MAX_SKIPPED_PAGES):
        page = await queries.jobs(JobsQuery(owner=client.id, status=status, limit=limit, cursor=cursor))
        jobs = [j for j in page.jobs if before is None or j.created_at < before]
        if after is not None:
            newer = [j for j in jobs if j.created_at > after]
            if len(newer) < len(jobs):  # newest first: everything further is older still
                return JobsReply(jobs=newer, next_cursor=None)
        if jobs or page.next_cursor is None:
            return JobsReply(jobs=jobs, next_cursor=page.next_cursor)
        cursor = page.next_cursor  # a whole page newer than created_before: skip it
    return JobsReply(jobs=[], next_cursor=cursor)


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
async def get_job(
    request: Request,
    job_id: JobId,
    client: CurrentClient,
    bus: BusDep,
    queries: QueriesDep,
    storage: StorageDep,
) -> JobOut:
    job = await load_job(job_id, client, bus, queries)
    blog = BlogOut(**job.blog.model_dump(), html=export.render_html(job.blog.markdown)) if job.blog else None
    images = await _image_out(job.images, storage) if job.images else None
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
    bus: BusDep,
    body: Annotated[CancelBody | None, Body()] = None,
) -> Accepted:
    await require_owned(job_id, client, bus)
    for terminal in sorted(TERMINAL_TYPES):
        if await _stored_last(bus, job_id, terminal) is not None:
            raise ApiError(409, "not_active", f"the job already finished ({terminal})")
    reason = body.reason if body else CancelBody().reason
    event = CancelRequestedEvent(
        job_id=job_id, producer=bus.producer(), data=CancelRequested(reason=reason, requested_by=client.id)
    )
    await _publish(bus, event)
    log.info("cancel requested", job_id=job_id, by=client.id)
    return Accepted(job_id=job_id)


@router.post(
    "/v1/jobs/{job_id}/regenerate",
    status_code=202,
    response_model=Accepted,
    summary="Regenerate one stage",
    description="Publishes regenerate.requested: the blog, one social post (or all of them), or the "
    "illustration is produced again as a new version; nothing else is redone. Refused (409) before the "
    "stage produced its first version or once the job failed or was cancelled.",
    responses=error_responses(401, 404, 409, 422, 503),
)
async def regenerate(
    job_id: JobId,
    body: RegenerateBody,
    client: CurrentClient,
    bus: BusDep,
    queries: QueriesDep,
) -> Accepted:
    job = await owned_request(job_id, client, bus, queries)
    if body.platform is not None:
        if body.stage != "social":
            raise ApiError(422, "invalid_request", "platform: only for the social stage")
        if body.platform not in job.platforms:
            raise ApiError(422, "invalid_request", f"platform: the job has no {body.platform} post")
    for stopped in STOPPED_TYPES:
        if await _stored_last(bus, job_id, stopped) is not None:
            raise ApiError(409, "not_active", f"the job is stopped ({stopped})")
    produced = PRODUCED_BY[body.stage]
    if await _stored_last(bus, job_id, produced) is None:
        raise ApiError(409, "not_ready", f"the {body.stage} stage has nothing to regenerate yet")
    event = RegenerateRequestedEvent(
        job_id=job_id,
        producer=bus.producer(),
        data=RegenerateRequested(
            stage=Stage(body.stage),
            platform=body.platform,
            instructions=body.instructions,
            requested_by=client.id,
        ),
    )
    await _publish(bus, event)
    log.info("regenerate requested", job_id=job_id, stage=body.stage, platform=body.platform)
    return Accepted(job_id=job_id)


# ---- edits --------------------------------------------------------------------------------------------


@router.put(
    "/v1/jobs/{job_id}/blog",
    status_code=202,
    response_model=VersionAccepted,
    summary="Replace the blog post",
    description="Stores the text as a new version (blog.edited, with you as editor); nothing is "
    "regenerated from it. Refused (409) while the job has no blog post yet.",
    responses=error_responses(401, 404, 409, 422, 503),
)
async def edit_blog(
    job_id: JobId,
    body: BlogEdit,
    client: CurrentClient,
    bus: BusDep,
    queries: QueriesDep,
) -> VersionAccepted:
    await require_owned(job_id, client, bus)
    # The stream knows every version the moment it is published (persistence may lag behind a previous
    # edit); persistence still knows versions whose events expired from the stream.
    versions = [
        e.data.version
        for event_type in ("blog.completed", "blog.edited")
        for e in await recorded(bus.nc, job_id, event_type)
        if isinstance(e, BlogCompletedEvent | BlogEditedEvent)
    ]
    versions += await _persisted_versions(queries, job_id, client, lambda j: j.blog)
    if not versions:
        raise ApiError(409, "not_ready", "the job has no blog post yet")
    version = await _publish_next_version(
        bus,
        max(versions),
        lambda version: BlogEditedEvent(
            job_id=job_id,
            producer=bus.producer(),
            data=BlogEdited(
                version=version,
                title=body.title,
                markdown=body.markdown,
                word_count=len(body.markdown.split()),
                editor=client.id,
            ),
        ),
    )
    log.info("blog edited", job_id=job_id, version=version, editor=client.id)
    await profiles.remember_edit(bus.js, client.id, f"# {body.title}\n\n{body.markdown}")
    return VersionAccepted(job_id=job_id, version=version)


async def _publish_next_version(bus: Bus, latest: int, make: Callable[[int], Envelope]) -> int:
    """Publishes the edit as the next free version: a concurrent edit may have taken the one we computed,
    which the stream reports as a duplicate of its de-duplication key."""
    for version in range(latest + 1, latest + 1 + EDIT_ATTEMPTS):
        if not (await _publish(bus, make(version))).duplicate:
            return version
    raise ApiError(409, "conflict", "this is being edited concurrently; try again")


async def _persisted_versions(
    queries: QueryClient, job_id: str, client: Client, pick: Callable[[JobReply], Any]
) -> list[int]:
    try:
        job = await queries.job(job_id, owner=client.id)
    except QueryError as exc:
        if exc.code == "not_found":  # not recorded yet: the stream has it all
            return []
        raise
    artifact = pick(job)
    if artifact is None:
        return []
    return [artifact.version, *(v.version for v in artifact.versions)]


@router.put(
    "/v1/jobs/{job_id}/social/{platform}",
    status_code=202,
    response_model=VersionAccepted,
    summary="Replace a social post",
    description="Stores the text as a new version of the platform's post (social.edited). Refused (422) "
    "over the platform's limit, (409) while the job has no post for the platform yet.",
    responses=error_responses(401, 404, 409, 422, 503),
)
async def edit_social(
    job_id: JobId,
    platform: Platform,
    body: SocialEdit,
    client: CurrentClient,
    bus: BusDep,
    queries: QueriesDep,
) -> VersionAccepted:
    await require_owned(job_id, client, bus)
    stored = [
        e
        for event_type in ("social.completed", "social.edited")
        for e in await recorded(bus.nc, job_id, event_type)
        if isinstance(e, SocialCompletedEvent | SocialEditedEvent) and e.data.platform == platform
    ]
    versions = [e.data.version for e in stored]
    versions += await _persisted_versions(queries, job_id, client, lambda j: j.social.get(platform.value))
    if not versions:
        raise ApiError(409, "not_ready", f"the job has no {platform} post yet")
    limit = LIMITS[platform]
    # Counted as the social stage counts (pressroom_contracts.platforms); a thread per post.
    thread = isinstance(stored[-1], SocialCompletedEvent) and bool(stored[-1].data.parts) if stored else False
    parts = [part for part in body.text.split("\n\n") if part.strip()] if thread else [body.text]
    characters = max(count(platform, part) for part in parts)
    if characters > limit:
        raise ApiError(
            422, "over_limit", f"text: {characters} characters, over the {platform} limit of {limit}"
        )
    version = await _publish_next_version(
        bus,
        max(versions),
        lambda version: SocialEditedEvent(
            job_id=job_id,
            producer=bus.producer(),
            data=SocialEdited(
                platform=platform,
                version=version,
                text=body.text,
                characters=characters,
                limit=limit,
                editor=client.id,
            ),
        ),
    )
    log.info("social post edited", job_id=job_id, platform=platform, version=version)
    await profiles.remember_edit(bus.js, client.id, body.text)
    return VersionAccepted(job_id=job_id, version=version)
