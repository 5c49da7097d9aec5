"""The gateway's application layer: start, cancel, regenerate and edit a job, read it, and who owns it.

Every transport (REST, `/v1/ws`, `/content`, SSE) translates its request into one of these calls and the
answer, or the GatewayError, back into its own shape; nothing here knows HTTP or WebSockets.

Admission, in this order for every action:
  1. authenticated: the transport resolves the Client before calling here;
  2. valid: the contract models (pressroom_contracts.jobs), then what only the job can tell (a platform
     the job has);
  3. the job is the client's (not_found otherwise, exactly like a missing job) and in a state that
     allows it (not_active, not_ready);
  4. moderation of what a person wrote (start);
  5. the budget (regenerate: what it would cost on top of what the job has spent);
  6. the client's quota (start, regenerate, edit): last, so a refused request costs no quota.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import nats.errors

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
    JobRequested,
    JobRequestedEvent,
    RegenerateRequested,
    RegenerateRequestedEvent,
    SocialCompletedEvent,
    SocialEdited,
    SocialEditedEvent,
    Stage,
    UsageRecordedEvent,
)
from pressroom_contracts.ids import new_job_id
from pressroom_contracts.jobs import (
    BlogEdit,
    CancelRequest,
    JobRequest,
    Platform,
    RegenerateRequest,
    SocialEdit,
)
from pressroom_contracts.platforms import LIMITS, count
from pressroom_contracts.queries import (
    JobDetail,
    JobQuery,
    JobReply,
    JobsQuery,
    JobsReply,
    JobStatus,
    UsageTotal,
)
from pressroom_runtime.logs import get_logger
from pressroom_runtime.observability import job_trace

from . import profiles
from .auth import ANONYMOUS_ID, Client
from .bus import SERVICE, Bus
from .errors import BudgetExceeded, Conflict, GatewayError, NotFound
from .idempotency import IdempotencyStore, Record, fingerprint
from .limits import Limiter
from .metrics import JOBS_STARTED
from .moderation import Moderator
from .queries import QueryClient, QueryError
from .states import JobStates
from .stream import EventStore

log = get_logger(__name__)

# What a stage publishes: it must have produced something before it can produce it again.
PRODUCED_BY = {"blog": "blog.completed", "social": "social.completed", "image": "image.completed"}
# A concurrent edit may take the version we computed: try the next one, a few times.
EDIT_ATTEMPTS = 5
# created_before is applied here (query.jobs has no date filter): at most this many pages are skipped
# per request before an empty page with a cursor is answered.
MAX_SKIPPED_PAGES = 10
# The owner of a job never changes: remember this many.
OWNER_CACHE_SIZE = 10_000
OWNER_QUERY_TIMEOUT = 2.0


@dataclass(frozen=True)
class Started:
    job_id: str
    replayed: bool = False  # an Idempotency-Key repeat: the job its first request started


@dataclass(frozen=True)
class Follow:
    """How to follow a job's events from `after_seq`."""

    after_seq: int
    # The client already saw the job's end (or its start expired from the stream): send what is stored
    # after after_seq and stop, instead of waiting for a terminal event.
    finite: bool
    # finite, and nothing is stored after after_seq.
    exhausted: bool


class Jobs:
    def __init__(
        self,
        bus: Bus,
        events: EventStore,
        limiter: Limiter,
        moderator: Moderator,
        queries: QueryClient,
        idempotency: IdempotencyStore,
        states: JobStates,
    ) -> None:
        self.bus = bus
        self.events = events
        self.states = states
        self.limiter = limiter
        self.moderator = moderator
        self.queries = queries
        self.idempotency = idempotency
        self._owners: dict[str, str] = {}

    # ---- who owns a job -------------------------------------------------------------------------------

    async def owner_of(self, job_id: str) -> str | None:
        """The client id owning `job_id`, or None when there is no such job (or the id is malformed).

        A client may see and control a job only when this equals its id. Read from the job-state
        bucket; for a job without an entry (started before the bucket existed), from its job.requested on
        the stream, and when the stream no longer holds it, from persistence. Jobs from before
        authentication belong to ANONYMOUS_ID. Bus errors propagate (answered as `unavailable`).
        """
        cached = self._owners.get(job_id)
        if cached is not None:
            return cached
        try:
            subjects.content_of_job(job_id)
        except subjects.SubjectError:
            return None
        state = await self.states.get(job_id)
        requested = await self._requested(job_id) if state is None else None
        if state is not None:
            owner: str | None = state.owner
        elif requested is not None:
            owner = requested.data.owner or ANONYMOUS_ID
        else:
            owner = await self._owner_from_persistence(job_id)
        if owner is not None:
            self._remember_owner(job_id, owner)
        return owner

    async def _requested(self, job_id: str) -> JobRequestedEvent | None:
        """The job's job.requested from the stream, or None when the stream does not hold it."""
        found = await self.events.last(job_id, "job.requested")
        return found.event if found is not None and isinstance(found.event, JobRequestedEvent) else None

    async def require_owned(self, client: Client, job_id: str) -> None:
        if await self.owner_of(job_id) != client.id:
            raise NotFound(job_id)

    def _remember_owner(self, job_id: str, owner: str) -> None:
        self._owners[job_id] = owner
        while len(self._owners) > OWNER_CACHE_SIZE:
            del self._owners[next(iter(self._owners))]

    async def _owner_from_persistence(self, job_id: str) -> str | None:
        body = JobQuery(job_id=job_id).model_dump_json().encode()
        try:
            reply = await self.bus.nc.request(subjects.QUERY_JOB, body, timeout=OWNER_QUERY_TIMEOUT)
        except nats.errors.NoRespondersError:
            return None  # persistence is not running: only the stream can vouch for a job
        except nats.errors.TimeoutError:
            log.warning("persistence did not answer an owner query", job_id=job_id)
            return None
        try:
            job = json.loads(reply.data)["job"]
        except (ValueError, KeyError, TypeError):
            return None  # {"error": {"code": "not_found", …}} or something unreadable
        owner = job.get("owner") if isinstance(job, dict) else None
        return owner if isinstance(owner, str) and owner else ANONYMOUS_ID

    # ---- start ----------------------------------------------------------------------------------------

    async def start(
        self, client: Client, request: JobRequest, *, idempotency_key: str | None = None
    ) -> Started:
        """Publishes job.requested for a new job of `client`. With an idempotency key, a repeat (same
        client, same key, within 24 h) answers with the first request's job instead."""
        wanted = fingerprint(request)
        if idempotency_key is not None:
            record = await self.idempotency.lookup(client.id, idempotency_key)
            if record is not None:
                return await self._replay(client, request, record, wanted)
        await self.moderator.check(request)
        await self.limiter.check_job_quota(client)
        job_id = new_job_id()
        if idempotency_key is not None:
            record = await self.idempotency.claim(client.id, idempotency_key, Record(job_id, wanted))
            if record.job_id != job_id:  # a concurrent request with the same key won
                return await self._replay(client, request, record, wanted)
        await self._publish_start(client, request, job_id)
        self._remember_owner(job_id, client.id)
        return Started(job_id)

    async def _replay(self, client: Client, request: JobRequest, record: Record, wanted: str) -> Started:
        if record.fingerprint != wanted:
            raise GatewayError(
                "this Idempotency-Key was already used with a different request",
                code="idempotency_key_reused",
            )
        if await self._requested(record.job_id) is None:
            # The first request recorded the key but its publish failed or has not landed yet: finish it
            # (same job id, same Nats-Msg-Id: the stream keeps one job.requested).
            await self._publish_start(client, request, record.job_id)
        return Started(record.job_id, replayed=True)

    async def _publish_start(self, client: Client, request: JobRequest, job_id: str) -> None:
        # The state entry first: whoever sees job.requested can look the job up.
        await self.states.create(job_id, client.id)
        # The owner's publishing profile rides on the event: every stage writes in its voice.
        profile = await profiles.load(self.bus.js, client.id)
        requested = JobRequested(
            request=request,
            owner=client.id,
            voice=profile.voice if profile and not profile.voice.empty else None,
            link_template=(profile.link_template if profile else None)
            or self.bus.settings.public_url_template,
        )
        event = JobRequestedEvent(job_id=job_id, producer=self.bus.producer, data=requested)
        with job_trace(SERVICE, job_id):  # the job's own trace, which every stage's spans join
            seq = await self.bus.publisher.publish(event)
        JOBS_STARTED.inc()
        log.info("job requested", job_id=job_id, seq=seq, owner=client.id)

    # ---- control --------------------------------------------------------------------------------------

    async def cancel(self, client: Client, job_id: str, ask: CancelRequest | None = None) -> None:
        """Publishes cancel.requested; the job's job.cancelled follows when it takes effect. A job that
        already finished is refused (not_active)."""
        ask = ask or CancelRequest()
        await self.require_owned(client, job_id)
        for terminal in sorted(TERMINAL_TYPES):
            if await self.events.last(job_id, terminal) is not None:
                raise Conflict(f"the job already finished ({terminal})", code="not_active")
        event = CancelRequestedEvent(
            job_id=job_id,
            producer=self.bus.producer,
            data=CancelRequested(reason=ask.reason, requested_by=client.id),
        )
        await self.bus.publisher.publish(event)
        log.info("cancel requested", job_id=job_id, by=client.id)

    async def regenerate(self, client: Client, job_id: str, ask: RegenerateRequest) -> None:
        """Publishes regenerate.requested for one stage (or one social post)."""
        request = await self.request_of(client, job_id)
        if ask.platform is not None:
            if ask.stage != "social":
                raise GatewayError("platform: only for the social stage")
            if ask.platform not in request.platforms:
                raise GatewayError(f"platform: the job has no {ask.platform} post")
        for stopped in STOPPED_TYPES:
            if await self.events.last(job_id, stopped) is not None:
                raise Conflict(f"the job is stopped ({stopped})", code="not_active")
        produced = await self.events.of_type(job_id, PRODUCED_BY[ask.stage])
        if not produced:
            raise Conflict(f"the {ask.stage} stage has nothing to regenerate yet", code="not_ready")
        await self._check_budget(job_id, request, ask, productions=len(produced))
        await self.limiter.check_job_quota(client)
        event = RegenerateRequestedEvent(
            job_id=job_id,
            producer=self.bus.producer,
            data=RegenerateRequested(
                stage=Stage(ask.stage),
                platform=ask.platform,
                instructions=ask.instructions,
                requested_by=client.id,
            ),
        )
        await self.bus.publisher.publish(event)
        log.info("regenerate requested", job_id=job_id, stage=ask.stage, platform=ask.platform)

    async def _check_budget(
        self, job_id: str, request: JobRequest, ask: RegenerateRequest, productions: int
    ) -> None:
        """Refuses a regeneration that would take the job past its budget: what the job spent, plus
        what the stage cost per production so far (per post for a social stage) for what is asked."""
        if request.budget_usd is None:
            return
        usage = [
            stored.event.data
            for stored in await self.events.of_type(job_id, "usage.recorded")
            if isinstance(stored.event, UsageRecordedEvent)
        ]
        spent = sum(u.cost_usd for u in usage)
        stage_cost = sum(u.cost_usd for u in usage if u.stage == Stage(ask.stage))
        items = len(request.platforms) if ask.stage == "social" and ask.platform is None else 1
        estimate = stage_cost / max(1, productions) * items
        if spent + estimate > request.budget_usd:
            raise BudgetExceeded(
                f"the job has spent ${spent:.4f} of its ${request.budget_usd:.4f} budget; regenerating "
                f"the {ask.stage} would cost about ${estimate:.4f} more"
            )

    # ---- edits ----------------------------------------------------------------------------------------

    async def edit_blog(self, client: Client, job_id: str, edit: BlogEdit) -> int:
        """Stores the text as the blog's next version (blog.edited, with the client as editor)."""
        await self.require_owned(client, job_id)
        versions = [
            stored.event.data.version
            for event_type in ("blog.completed", "blog.edited")
            for stored in await self.events.of_type(job_id, event_type)
            if isinstance(stored.event, BlogCompletedEvent | BlogEditedEvent)
        ]
        versions += await self._persisted_versions(client, job_id, lambda job: job.blog)
        if not versions:
            raise Conflict("the job has no blog post yet", code="not_ready")
        await self.limiter.check_job_quota(client)
        version = await self._publish_next_version(
            max(versions),
            lambda version: BlogEditedEvent(
                job_id=job_id,
                producer=self.bus.producer,
                data=BlogEdited(
                    version=version,
                    title=edit.title,
                    markdown=edit.markdown,
                    word_count=len(edit.markdown.split()),
                    editor=client.id,
                ),
            ),
        )
        log.info("blog edited", job_id=job_id, version=version, editor=client.id)
        await profiles.remember_edit(self.bus.js, client.id, f"# {edit.title}\n\n{edit.markdown}")
        return version

    async def edit_social(self, client: Client, job_id: str, platform: Platform, edit: SocialEdit) -> int:
        """Stores the text as the platform post's next version; refused over the platform's limit."""
        await self.require_owned(client, job_id)
        stored = [
            found.event
            for event_type in ("social.completed", "social.edited")
            for found in await self.events.of_type(job_id, event_type)
            if isinstance(found.event, SocialCompletedEvent | SocialEditedEvent)
            and found.event.data.platform == platform
        ]
        versions = [event.data.version for event in stored]
        versions += await self._persisted_versions(client, job_id, lambda job: job.social.get(platform.value))
        if not versions:
            raise Conflict(f"the job has no {platform} post yet", code="not_ready")
        limit = LIMITS[platform]
        # Counted as the social stage counts (pressroom_contracts.platforms); a thread per post.
        latest = max(stored, key=lambda event: event.data.version) if stored else None
        thread = isinstance(latest, SocialCompletedEvent) and bool(latest.data.parts)
        parts = [part for part in edit.text.split("\n\n") if part.strip()] if thread else [edit.text]
        characters = max(count(platform, part) for part in parts)
        if characters > limit:
            raise GatewayError(
                f"text: {characters} characters, over the {platform} limit of {limit}", code="over_limit"
            )
        await self.limiter.check_job_quota(client)
        version = await self._publish_next_version(
            max(versions),
            lambda version: SocialEditedEvent(
                job_id=job_id,
                producer=self.bus.producer,
                data=SocialEdited(
                    platform=platform,
                    version=version,
                    text=edit.text,
                    characters=characters,
                    limit=limit,
                    editor=client.id,
                ),
            ),
        )
        log.info("social post edited", job_id=job_id, platform=platform, version=version)
        await profiles.remember_edit(self.bus.js, client.id, edit.text)
        return version

    async def _publish_next_version(self, latest: int, make: Callable[[int], Envelope]) -> int:
        """The one place edit versions are decided: the next one after every version the stream and
        persistence know. A concurrent edit may have taken it: the stream then keeps the other edit (same
        de-duplication key) and answers with its sequence, so we try the next one."""
        for version in range(latest + 1, latest + 1 + EDIT_ATTEMPTS):
            event = make(version)
            seq = await self.bus.publisher.publish(event)
            stored = await self.events.at(seq)
            if stored is None or stored.id == event.id:
                return version
        raise Conflict("this is being edited concurrently; try again", code="conflict")

    async def _persisted_versions(
        self, client: Client, job_id: str, pick: Callable[[JobReply], object]
    ) -> list[int]:
        """Versions persistence knows (their events may have expired from the stream)."""
        try:
            job = await self.queries.job(job_id, owner=client.id)
        except QueryError as exc:
            if exc.code == "not_found":  # not recorded yet: the stream has it all
                return []
            raise
        artifact = pick(job)
        if artifact is None:
            return []
        return [artifact.version, *(v.version for v in artifact.versions)]  # type: ignore[attr-defined]

    # ---- reads ----------------------------------------------------------------------------------------

    async def request_of(self, client: Client, job_id: str) -> JobRequest:
        """The job's request (not_found unless the job is the client's)."""
        await self.require_owned(client, job_id)
        requested = await self._requested(job_id)
        if requested is not None:
            return requested.data.request
        return JobRequest.model_validate((await self.queries.job(job_id, owner=client.id)).job.request)

    async def load(self, client: Client, job_id: str) -> JobReply:
        """The job as persistence has it. A job persistence has not recorded yet (created a moment ago)
        answers from its job.requested on the stream: requested, nothing produced yet."""
        try:
            return await self.queries.job(job_id, owner=client.id)
        except QueryError as exc:
            if exc.code != "not_found":
                raise
        await self.require_owned(client, job_id)
        event = await self._requested(job_id)
        if event is None:
            raise NotFound(job_id)
        request = event.data.request
        return JobReply(
            job=JobDetail(
                id=job_id,
                status=JobStatus.requested,
                owner=event.data.owner,
                topic=request.topic,
                title=None,
                created_at=event.occurred_at,
                updated_at=event.occurred_at,
                completed_at=None,
                failure=None,
                cost_usd=0.0,
                budget_usd=request.budget_usd,
                request=request.model_dump(mode="json"),
            ),
            research=None,
            blog=None,
            social={},
            images=None,
            usage_total=UsageTotal(calls=0, input_tokens=0, output_tokens=0, images=0, cost_usd=0.0),
        )

    async def list(
        self,
        client: Client,
        *,
        status: JobStatus | None,
        created_after: datetime | None,
        created_before: datetime | None,
        limit: int,
        cursor: str | None,
    ) -> JobsReply:
        """The client's jobs, newest first, filtered by status and creation time (exclusive bounds)."""
        after, before = created_after, created_before
        for _ in range(MAX_SKIPPED_PAGES):
            page = await self.queries.jobs(
                JobsQuery(owner=client.id, status=status, limit=limit, cursor=cursor)
            )
            jobs = [j for j in page.jobs if before is None or j.created_at < before]
            if after is not None:
                newer = [j for j in jobs if j.created_at > after]
                if len(newer) < len(jobs):  # newest first: everything further is older still
                    return JobsReply(jobs=newer, next_cursor=None)
            if jobs or page.next_cursor is None:
                return JobsReply(jobs=jobs, next_cursor=page.next_cursor)
            cursor = page.next_cursor  # a whole page newer than created_before: skip it
        return JobsReply(jobs=[], next_cursor=cursor)

    async def follow(self, client: Client, job_id: str, after_seq: int) -> Follow:
        """How a client follows the job's events after `after_seq` (not_found unless it is theirs)."""
        await self.require_owned(client, job_id)
        if await self.events.last(job_id, "job.requested") is not None:
            ends = [found.seq for t in TERMINAL_TYPES if (found := await self.events.last(job_id, t))]
            finite = bool(ends) and max(ends) <= after_seq
        else:  # an old job whose start expired from the stream: whatever is left, then the end
            finite = True
        exhausted = finite and await self.events.next_of_job(job_id, after_seq + 1) is None
        return Follow(after_seq=after_seq, finite=finite, exhausted=exhausted)
