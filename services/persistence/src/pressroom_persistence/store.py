"""All SQL of the service (asyncpg). No broker here.

Writes are idempotent on each row's natural key (INSERT … ON CONFLICT DO NOTHING) and status
changes are compare-and-set, so a redelivered or late event changes nothing. Everything that decides
on a job's state runs in `Store.job()`, a transaction holding the job's row lock: replicas handling two
artifacts of one job at once are serialised, and the second sees the first's row.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from decimal import Decimal
from typing import Any, NamedTuple

import asyncpg
from pydantic import BaseModel

from pressroom_contracts.events import (
    BlogCompletedEvent,
    BlogEditedEvent,
    Envelope,
    ImageCompletedEvent,
    JobFailed,
    JobRequestedEvent,
    ResearchCompletedEvent,
    SocialCompletedEvent,
    SocialEditedEvent,
    UsageRecordedEvent,
)
from pressroom_runtime.errors import PermanentError, Unavailable

from .completion import Artifacts

ACTIVE = ("requested", "running")

# Where a version of an artifact came from (the `origin` column).
GENERATED, REGENERATED, EDITED = "generated", "regenerated", "edited"


class StatusRow(NamedTuple):
    """A job's status as a statement left it (what the job-state bucket mirrors)."""

    id: str
    status: str
    owner: str | None


class UsageRow(NamedTuple):
    """What storing a usage report did: `stored` False when a report as new was there already; else
    the job's status and cost as the statement left them."""

    stored: bool
    status: str | None = None
    cost_usd: Decimal = Decimal(0)
    budget_usd: Decimal | None = None

    @property
    def overran_budget(self) -> bool:
        """Stored, and an active job's cost is now over its budget."""
        over = self.budget_usd is not None and self.cost_usd > self.budget_usd
        return self.stored and over and self.status in ACTIVE


class UnknownJob(LookupError):
    """The job's job.requested has not been recorded (yet)."""


@contextmanager
def translated_errors() -> Iterator[None]:
    """PostgreSQL's errors as the delivery policy understands them: a server that cannot be reached (or
    that is shutting down, out of resources or rolled us back) is an outage, waited out; a value it
    cannot store is permanent."""
    try:
        yield
    except (
        asyncpg.PostgresConnectionError,
        asyncpg.exceptions.OperatorInterventionError,
        asyncpg.exceptions.InsufficientResourcesError,
        asyncpg.exceptions.TransactionRollbackError,
    ) as exc:
        raise Unavailable(f"PostgreSQL unavailable: {type(exc).__name__}: {exc}") from exc
    except asyncpg.InterfaceError as exc:
        if "closed" in str(exc) or "closing" in str(exc):  # a connection lost mid-use
            raise Unavailable(f"PostgreSQL unavailable: {exc}") from exc
        raise
    except asyncpg.DataError as exc:
        raise PermanentError(f"PostgreSQL cannot store it: {exc}", code="unstorable") from exc


async def _init_connection(conn: asyncpg.Connection) -> None:
    await conn.set_type_codec("jsonb", encoder=json.dumps, decoder=json.loads, schema="pg_catalog")


async def _session_unchanged(conn: asyncpg.Connection) -> None:
    """Instead of asyncpg's reset query on every release (a round trip per event): nothing here changes a
    session's state — no SET, no LISTEN, no session-level advisory lock, no open cursor."""


# The audit log's row of an event: its columns, and their values as $1…$6.
_EVENT_COLUMNS = "event_id, job_id, type, causation_id, producer, occurred_at"
# The event's row, unless it is there already: true when this statement logged it.
_LOG_EVENT = f"""INSERT INTO events ({_EVENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT DO NOTHING RETURNING true"""
# The same, only when its job is recorded (for statements that handle the event without a job lock).
_LOG_EVENT_OF_RECORDED_JOB = f"""INSERT INTO events ({_EVENT_COLUMNS})
                 SELECT $1, $2, $3, $4, $5, $6 WHERE EXISTS (SELECT 1 FROM jobs WHERE id = $2)
                 ON CONFLICT DO NOTHING"""


def _json(model: BaseModel | None) -> dict[str, Any] | None:
    return model.model_dump(mode="json") if model is not None else None


def _event_row(event: Envelope) -> tuple[Any, ...]:
    producer = f"{event.producer.service}/{event.producer.replica}"
    return (event.id, event.job_id, event.type, event.causation_id, producer, event.occurred_at)


class Store:
    def __init__(self, dsn: str, *, min_size: int = 1, max_size: int = 10) -> None:
        self.dsn = dsn
        self.min_size = min_size
        self.max_size = max_size
        self._pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self._pool = await asyncpg.create_pool(
            self.dsn,
            min_size=self.min_size,
            max_size=self.max_size,
            init=_init_connection,
            reset=_session_unchanged,
        )

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @property
    def pool(self) -> asyncpg.Pool:
        if self._pool is None:
            raise RuntimeError("the store is not open")
        return self._pool

    # ---- writes ------------------------------------------------------------------------------------------

    async def log_event(self, event: Envelope) -> bool:
        """Records the event in the audit log only; False when it was there already."""
        async with self.pool.acquire() as conn:
            return bool(await conn.fetchval(_LOG_EVENT, *_event_row(event)))

    async def add_job(self, event: JobRequestedEvent, default_budget_usd: float | None = None) -> bool:
        """The budget is fixed here: the request's own, else `default_budget_usd` (None: unlimited)."""
        request = event.data.request
        budget = request.budget_usd if request.budget_usd is not None else default_budget_usd
        async with self.pool.acquire() as conn:  # one statement: logged and recorded together
            inserted = await conn.fetchval(
                f"""WITH logged AS ({_LOG_EVENT})
                    INSERT INTO jobs (id, status, request, owner, created_at, budget_usd)
                    VALUES ($2, 'requested', $7, $8, $9, $10) ON CONFLICT DO NOTHING RETURNING true""",
                *_event_row(event), request.model_dump(mode="json"), event.data.owner, event.occurred_at,
                _decimal(budget) if budget is not None else None,
            )  # fmt: skip
            return bool(inserted)

    async def progress(self, event: Envelope) -> StatusRow | None:
        """Logs a progress event and notes the progress in one statement (most of a job's events are
        progress: a transaction of five round trips each was a third of the service's time): a requested
        job becomes running, an active one is touched for the stalled-job sweep, a finished one keeps
        its status. The job's status afterwards; None when the job is not recorded.

        No explicit row lock is needed: the UPDATE takes it, and waits for a transaction that holds it
        (an artifact completing the job), then re-checks the status on the row that one committed."""
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""WITH logged AS ({_LOG_EVENT_OF_RECORDED_JOB}),
                    moved AS (
                        UPDATE jobs SET status = 'running', updated_at = now()
                        WHERE id = $2 AND status = ANY($7::text[]) RETURNING status)
                    SELECT coalesce((SELECT status FROM moved), j.status) AS status, j.owner
                    FROM jobs j WHERE j.id = $2""",
                *_event_row(event),
                list(ACTIVE),
            )
        return None if row is None else StatusRow(event.job_id, row["status"], row["owner"])

    async def usage(self, event: UsageRecordedEvent) -> UsageRow | None:
        """Logs a usage report and stores it when it is newer than the call's stored one, adding what it
        adds to the job's cost — one statement, no job lock (six of a job's events are usage reports: a
        locked transaction of four round trips each). Exact under concurrency: the upsert locks the
        call's row and sets it from its latest version (`replaced_cost_usd` keeps the cost it replaced),
        and the job's cost grows by the difference on the row's latest version too. None when the job is
        not recorded."""
        d = event.data
        async with self.pool.acquire() as conn:
            row = await conn.fetchrow(
                f"""WITH job AS (SELECT id FROM jobs WHERE id = $2),
                    logged AS ({_LOG_EVENT_OF_RECORDED_JOB}),
                    stored AS (
                        INSERT INTO usage (job_id, stage, call, report, provider, model, input_tokens,
                                           output_tokens, images, cost_usd, replaced_cost_usd)
                        SELECT $2, $7, $8, $9, $10, $11, $12, $13, $14, $15::numeric, 0 FROM job
                        ON CONFLICT (job_id, stage, call) DO UPDATE SET
                            report = EXCLUDED.report, provider = EXCLUDED.provider, model = EXCLUDED.model,
                            input_tokens = EXCLUDED.input_tokens, output_tokens = EXCLUDED.output_tokens,
                            images = EXCLUDED.images, cost_usd = EXCLUDED.cost_usd,
                            replaced_cost_usd = usage.cost_usd
                        WHERE usage.report < EXCLUDED.report
                        RETURNING cost_usd - replaced_cost_usd AS added),
                    costed AS (
                        UPDATE jobs SET cost_usd = cost_usd + (SELECT added FROM stored), updated_at = now()
                        WHERE id = $2 AND EXISTS (SELECT 1 FROM stored)
                        RETURNING status, cost_usd, budget_usd)
                    SELECT c.status, c.cost_usd, c.budget_usd, EXISTS (SELECT 1 FROM costed) AS stored
                    FROM job LEFT JOIN costed c ON true""",
                *_event_row(event), d.stage.value, d.call, d.report, d.provider, d.model, d.input_tokens,
                d.output_tokens, d.images, _decimal(d.cost_usd),
            )  # fmt: skip
        if row is None:
            return None
        if not row["stored"]:
            return UsageRow(stored=False)
        return UsageRow(True, row["status"], row["cost_usd"], row["budget_usd"])

    @asynccontextmanager
    async def job(self, job_id: str, *, handling: Envelope | None = None) -> AsyncIterator[JobTx]:
        """A transaction on one job, its row locked until commit; UnknownJob if it is not recorded.
        `handling`: the event of that job the transaction handles, logged in the same round trip
        (JobTx.logged: False when it was logged already)."""
        columns = "id, status, request, owner, cost_usd, budget_usd"
        async with self.pool.acquire() as conn, conn.transaction():
            if handling is None:
                row = await conn.fetchrow(
                    f"SELECT {columns}, false AS logged FROM jobs WHERE id = $1 FOR UPDATE", job_id
                )
            else:
                row = await conn.fetchrow(
                    f"""WITH logged AS ({_LOG_EVENT})
                        SELECT {columns}, EXISTS (SELECT 1 FROM logged) AS logged
                        FROM jobs WHERE id = $2 FOR UPDATE""",
                    *_event_row(handling),
                )
            if row is None:
                raise UnknownJob(job_id)  # rolls back the log's row: the event waits for its job
            yield JobTx(conn, row)

    async def stalled_jobs(self, idle_seconds: float, limit: int = 100) -> list[str]:
        """Active jobs with no progress for `idle_seconds`, and jobs failed as stalled whose job.failed has
        not come back through the stream (a crash right after the sweep failed them)."""
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                """SELECT id FROM jobs j
                   WHERE (status IN ('requested', 'running') AND updated_at < now() - make_interval(secs => $1))
                      OR (status = 'failed' AND failure_code = 'stalled' AND updated_at < now() - interval '30 s'
                          AND NOT EXISTS (SELECT 1 FROM events e WHERE e.job_id = j.id AND e.type = 'job.failed'))
                   ORDER BY updated_at LIMIT $2""",
                idle_seconds, limit,
            )  # fmt: skip
        return [row["id"] for row in rows]

    # ---- reads -------------------------------------------------------------------------------------------

    async def job_detail(self, job_id: str) -> dict[str, Any] | None:
        """The job, the latest version of each artifact and every artifact's version history (oldest
        first, under "history"), from one consistent snapshot."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            job = await conn.fetchrow(f"{_SUMMARY} WHERE j.id = $1", job_id)
            if job is None:
                return None
            research = await conn.fetchrow(
                "SELECT * FROM research WHERE job_id = $1 ORDER BY version DESC LIMIT 1", job_id
            )
            blog = await conn.fetchrow(
                "SELECT * FROM blog_posts WHERE job_id = $1 ORDER BY version DESC LIMIT 1", job_id
            )
            social = await conn.fetch(
                """SELECT DISTINCT ON (platform) * FROM social_posts WHERE job_id = $1
                   ORDER BY platform, version DESC""",
                job_id,
            )
            image = await conn.fetchrow(
                "SELECT * FROM images WHERE job_id = $1 ORDER BY version DESC LIMIT 1", job_id
            )
            usage = await conn.fetchrow(
                """SELECT count(*) AS calls, coalesce(sum(input_tokens), 0) AS input_tokens,
                          coalesce(sum(output_tokens), 0) AS output_tokens,
                          coalesce(sum(images), 0) AS images, coalesce(sum(cost_usd), 0) AS cost_usd
                   FROM usage WHERE job_id = $1""",
                job_id,
            )
            blog_versions = await conn.fetch(
                "SELECT version, origin, editor, created_at FROM blog_posts WHERE job_id = $1 ORDER BY version",
                job_id,
            )
            social_versions = await conn.fetch(
                """SELECT platform, version, origin, editor, created_at FROM social_posts WHERE job_id = $1
                   ORDER BY platform, version""",
                job_id,
            )
            image_versions = await conn.fetch(
                "SELECT version, origin, created_at FROM images WHERE job_id = $1 ORDER BY version", job_id
            )
        social_history: dict[str, list[dict[str, Any]]] = {}
        for row in social_versions:
            version = dict(row)
            social_history.setdefault(version.pop("platform"), []).append(version)
        return {
            "job": dict(job),
            "research": _maybe(research),
            "blog": _maybe(blog),
            "social": {row["platform"]: dict(row) for row in social},
            "image": _maybe(image),
            "usage": dict(usage),
            "history": {
                "blog": [dict(row) for row in blog_versions],
                "social": social_history,
                "image": [dict(row) for row in image_versions],
            },
        }

    async def list_jobs(
        self, *, owner: str | None, status: str | None, limit: int, after: tuple[datetime, str] | None
    ) -> list[dict[str, Any]]:
        """Newest first; `after` is the (created_at, id) of the last job of the previous page."""
        after_at, after_id = after if after else (None, None)
        async with self.pool.acquire() as conn:
            rows = await conn.fetch(
                f"""{_SUMMARY}
                    WHERE ($1::text IS NULL OR j.owner = $1)
                      AND ($2::text IS NULL OR j.status = $2)
                      AND ($3::timestamptz IS NULL OR (j.created_at, j.id) < ($3, $4::text))
                    ORDER BY j.created_at DESC, j.id DESC
                    LIMIT $5""",
                owner, status, after_at, after_id, limit,
            )  # fmt: skip
        return [dict(row) for row in rows]


class JobTx:
    """What may be done to one locked job inside its transaction."""

    def __init__(self, conn: asyncpg.Connection, row: asyncpg.Record) -> None:
        self.conn = conn
        self.id: str = row["id"]
        self.status: str = row["status"]
        self.request: dict[str, Any] = row["request"]
        self.owner: str | None = row["owner"]
        self.cost_usd: Decimal = row["cost_usd"]
        self.budget_usd: Decimal | None = row["budget_usd"]
        self.logged: bool = row["logged"]  # the event it handles was logged by it, not before

    async def move(
        self,
        to: str,
        from_: Iterable[str],
        *,
        failure: JobFailed | None = None,
        cancel_reason: str | None = None,
        by: Envelope | None = None,
    ) -> bool:
        """Compare-and-set of the status; False when the job is not in one of `from_`.

        `by`: the event whose handling makes this move, remembered as the one that ended the job.
        """
        if self.status not in from_:  # the row is locked: what we read is what there is
            return False
        moved = await self.conn.fetchval(
            """UPDATE jobs SET status = $2, updated_at = now(),
                   completed_at = CASE WHEN $2 = 'completed' THEN now() ELSE completed_at END,
                   failed_stage = coalesce($4, failed_stage),
                   failure_code = coalesce($5, failure_code),
                   failure_message = coalesce($6, failure_message),
                   cancel_reason = coalesce($7, cancel_reason),
                   ended_by = coalesce($8, ended_by)
               WHERE id = $1 AND status = ANY($3::text[]) RETURNING true""",
            self.id, to, list(from_),
            failure.stage.value if failure else None, failure.code if failure else None,
            failure.message if failure else None, cancel_reason, by.id if by else None,
        )  # fmt: skip
        if moved:
            self.status = to
        return bool(moved)

    async def failure(self) -> JobFailed | None:
        row = await self.conn.fetchrow(
            "SELECT failed_stage, failure_code, failure_message FROM jobs WHERE id = $1", self.id
        )
        if row is None or row["failed_stage"] is None:
            return None
        return JobFailed(stage=row["failed_stage"], code=row["failure_code"], message=row["failure_message"])

    async def ended_by(self) -> str | None:
        return await self.conn.fetchval("SELECT ended_by FROM jobs WHERE id = $1", self.id)

    async def cancel_reason(self) -> str | None:
        return await self.conn.fetchval("SELECT cancel_reason FROM jobs WHERE id = $1", self.id)

    def over_budget(self) -> bool:
        return self.budget_usd is not None and self.cost_usd > self.budget_usd

    async def announced(self, event_type: str) -> bool:
        """Has an event of this type come back through the stream, i.e. was it surely published?"""
        return bool(await self.conn.fetchval(
            "SELECT EXISTS (SELECT 1 FROM events WHERE job_id = $1 AND type = $2)", self.id, event_type
        ))  # fmt: skip

    async def artifacts(self) -> Artifacts:
        row = await self.conn.fetchrow(
            """SELECT (SELECT title FROM blog_posts WHERE job_id = $1 ORDER BY version DESC LIMIT 1) AS title,
                      (SELECT object_key FROM images WHERE job_id = $1 ORDER BY version DESC LIMIT 1) AS image,
                      ARRAY(SELECT DISTINCT platform FROM social_posts WHERE job_id = $1) AS platforms,
                      EXISTS (SELECT 1 FROM research WHERE job_id = $1) AS research""",
            self.id,
        )
        return Artifacts(
            blog_title=row["title"],
            platforms=frozenset(row["platforms"]),
            image_key=row["image"],
            has_research=row["research"],
        )

    async def idle_for(self, seconds: float) -> bool:
        return bool(await self.conn.fetchval(
            "SELECT updated_at < now() - make_interval(secs => $2) FROM jobs WHERE id = $1", self.id, seconds
        ))  # fmt: skip

    async def _insert(self, sql: str, *args: Any) -> bool:
        """The row, unless its key is there already; the job notes the progress. One round trip. ($1 is
        the job id in every caller's statement.)"""
        return bool(await self.conn.fetchval(
            f"""WITH inserted AS ({sql} ON CONFLICT DO NOTHING RETURNING 1)
                UPDATE jobs SET updated_at = now() WHERE id = $1 AND EXISTS (SELECT 1 FROM inserted)
                RETURNING true""",
            *args,
        ))  # fmt: skip

    async def add_research(self, event: ResearchCompletedEvent) -> bool:
        d = event.data
        return await self._insert(
            """INSERT INTO research (job_id, version, provider, skipped, reason, notes, sources)
               VALUES ($1, 1, $2, $3, $4, $5, $6)""",
            self.id, d.provider, d.skipped, d.reason, d.notes, [s.model_dump(mode="json") for s in d.sources],
        )  # fmt: skip

    async def add_blog(self, event: BlogCompletedEvent) -> bool:
        d = event.data
        origin = REGENERATED if d.regenerated or d.version > 1 else GENERATED
        return await self._insert(
            """INSERT INTO blog_posts (job_id, version, origin, title, markdown, word_count, citations, model,
                                       input_tokens, output_tokens, checks)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)""",
            self.id, d.version, origin, d.title, d.markdown, d.word_count,
            [c.model_dump(mode="json") for c in d.citations], d.usage.model,
            d.usage.input_tokens, d.usage.output_tokens, _json(d.checks),
        )  # fmt: skip

    async def add_blog_edit(self, event: BlogEditedEvent) -> bool:
        """An edited version keeps the citations of the version before it that its markdown still cites."""
        d = event.data
        before = await self.conn.fetchval(
            """SELECT citations FROM blog_posts WHERE job_id = $1 AND version < $2
               ORDER BY version DESC LIMIT 1""",
            self.id, d.version,
        )  # fmt: skip
        citations = [c for c in before or [] if f"[{c.get('number')}]" in d.markdown]
        return await self._insert(
            """INSERT INTO blog_posts (job_id, version, origin, editor, title, markdown, word_count, citations,
                                       model, input_tokens, output_tokens)
               VALUES ($1, $2, 'edited', $3, $4, $5, $6, $7, NULL, 0, 0)""",
            self.id, d.version, d.editor, d.title, d.markdown, d.word_count, citations,
        )  # fmt: skip

    async def add_social(self, event: SocialCompletedEvent) -> bool:
        d = event.data
        return await self._insert(
            """INSERT INTO social_posts (job_id, platform, version, origin, text, parts, characters, char_limit,
                                         checks)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)""",
            self.id, d.platform.value, d.version, REGENERATED if d.version > 1 else GENERATED, d.text,
            d.parts, d.characters, d.limit, _json(d.checks),
        )  # fmt: skip

    async def add_social_edit(self, event: SocialEditedEvent) -> bool:
        d = event.data
        return await self._insert(
            """INSERT INTO social_posts (job_id, platform, version, origin, editor, text, characters,
                                         char_limit)
               VALUES ($1, $2, $3, 'edited', $4, $5, $6, $7)""",
            self.id, d.platform.value, d.version, d.editor, d.text, d.characters, d.limit,
        )  # fmt: skip

    async def add_image(self, event: ImageCompletedEvent) -> bool:
        d = event.data
        return await self._insert(
            """INSERT INTO images (job_id, version, origin, object_key, prompt, width, height, content_type,
                                   sha256, size_bytes, provider, variants)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)""",
            self.id, d.version, REGENERATED if d.version > 1 else GENERATED, d.object_key, d.prompt,
            d.width, d.height, d.content_type, d.sha256, d.size_bytes, d.provider,
            [v.model_dump(mode="json") for v in d.variants],
        )  # fmt: skip


# One row per job as listings show it: the latest blog title stands for the job.
_SUMMARY = """
SELECT j.id, j.status, j.owner, j.request, j.created_at, j.updated_at, j.completed_at,
       j.failed_stage, j.failure_code, j.failure_message, j.cost_usd, j.budget_usd, j.cancel_reason,
       (SELECT b.title FROM blog_posts b WHERE b.job_id = j.id ORDER BY b.version DESC LIMIT 1) AS title
FROM jobs j"""


def _maybe(row: asyncpg.Record | None) -> dict[str, Any] | None:
    return dict(row) if row is not None else None


def _decimal(usd: float) -> Decimal:
    return Decimal(str(usd))  # via str: the float's shortest repr, not its binary expansion
