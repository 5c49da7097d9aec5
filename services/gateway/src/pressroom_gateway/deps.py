"""The gateway's parts, built once by `create_app` and kept on `app.state.services`, and the FastAPI
dependencies every route reaches them through (HTTP and WebSocket alike)."""

from __future__ import annotations

import asyncio
import re
from typing import Annotated

from fastapi import Depends, Path
from starlette.requests import HTTPConnection

from pressroom_contracts.subjects import JOB_ID_PATTERN

from .auth import Authenticator, Client, request_token
from .bus import Bus
from .errors import NotFound, Unauthenticated
from .fanout import Hub
from .idempotency import IdempotencyStore
from .jobs import Jobs
from .limits import Limiter
from .moderation import Moderator
from .presign import Storage, StorageSettings
from .queries import QueryClient
from .settings import GatewaySettings
from .states import JobStates
from .stream import EventStore


class Services:
    """Everything one gateway process holds, made once."""

    def __init__(self, settings: GatewaySettings, storage_settings: StorageSettings | None = None) -> None:
        self.settings = settings
        self.bus = Bus(settings)
        self.events = EventStore(self.bus)
        self.auth = Authenticator(settings, self.bus)
        self.limiter = Limiter(settings)
        self.moderator = Moderator(settings)
        self.queries = QueryClient(self.bus)
        self.hub = Hub(
            lambda: self.bus.nc,
            self.events,
            linger=settings.feed_linger,
            start_within=settings.feed_start_within,
        )
        self.jobs = Jobs(
            self.bus,
            self.events,
            self.limiter,
            self.moderator,
            self.queries,
            IdempotencyStore(self.bus),
            JobStates(self.bus),
        )
        # The object store is only needed for images and exports: its client is made on first use, from
        # the environment (S3_*) unless settings are given.
        self.storage_settings = storage_settings
        self._storage: Storage | None = None
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def storage(self) -> Storage:
        if self._storage is None:
            self._storage = Storage(self.storage_settings or StorageSettings())
        return self._storage

    async def start(self) -> None:
        await self.bus.connect()
        self._tasks.append(asyncio.create_task(self.auth.watch_revocations(), name="key-bucket-watch"))

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        await self.hub.close()
        await self.bus.close()


def get_services(connection: HTTPConnection) -> Services:
    services: Services = connection.app.state.services
    return services


ServicesDep = Annotated[Services, Depends(get_services)]


async def current_client(connection: HTTPConnection, services: ServicesDep) -> Client:
    """The authenticated caller, else 401 `unauthenticated` (503 `unavailable` when the key store cannot
    be reached)."""
    token = request_token(connection)
    if token is None:
        raise Unauthenticated("a bearer token is required: Authorization: Bearer <api key or jwt>")
    client = await services.auth.authenticate(token)
    if client is None:
        raise Unauthenticated("the token is not valid (unknown, revoked or expired)")
    return client


CurrentClient = Annotated[Client, Depends(current_client)]


def get_jobs(services: ServicesDep) -> Jobs:
    return services.jobs


JobsDep = Annotated[Jobs, Depends(get_jobs)]

_JOB_ID = re.compile(JOB_ID_PATTERN)


def job_id_param(
    job_id: Annotated[str, Path(description="The job's id, as returned when it was created.")],
    client: CurrentClient,
) -> str:
    """The path's job id, looked at only once the caller is authenticated (`client`: FastAPI resolves
    it once per request). A malformed id cannot name a job: not found, like any id not yours."""
    if not _JOB_ID.match(job_id):
        raise NotFound(job_id)
    return job_id


JobId = Annotated[str, Depends(job_id_param)]
