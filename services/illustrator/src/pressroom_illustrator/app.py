from __future__ import annotations

import asyncio
import contextlib
import random
from datetime import timedelta

from faststream.asgi import AsgiFastStream

from pressroom_contracts.events import Stage
from pressroom_contracts.topology import ILLUSTRATOR
from pressroom_runtime.llm import TextModel
from pressroom_runtime.logs import get_logger
from pressroom_runtime.objectstore import ObjectStore
from pressroom_runtime.service import stage_app
from pressroom_runtime.settings import LLMSettings, S3Settings
from pressroom_runtime.stage import dispatch

from .adapters import CoverCardProvider, ImageProvider, OpenAIImageProvider
from .handlers import handlers
from .illustrator import Illustrator
from .settings import IllustratorSettings
from .sweep import SweepReport, run_sweeper, sweep_orphans

log = get_logger(__name__)


def image_provider(settings: IllustratorSettings) -> ImageProvider:
    choice = settings.resolved_image_provider()
    if choice == "cover":
        return CoverCardProvider()
    if not settings.has_api_key:
        raise ValueError("PRESSROOM_ILLUSTRATOR_IMAGE_PROVIDER=openai needs OPENAI_API_KEY")
    assert settings.openai_api_key is not None
    return OpenAIImageProvider.create(
        api_key=settings.openai_api_key.get_secret_value(),
        base_url=settings.images_base_url,
        model=settings.image_model,
        size=settings.image_size,
        timeout=settings.image_timeout,
    )


def create_app(
    settings: IllustratorSettings | None = None,
    model: TextModel | None = None,
    store: ObjectStore | None = None,
    images: ImageProvider | None = None,
) -> AsgiFastStream:
    settings = settings or IllustratorSettings()
    store = store or ObjectStore(S3Settings())
    images = images or image_provider(settings)
    log.info("image provider", provider=images.name, model=images.model)
    table = handlers(
        Illustrator(model or TextModel(LLMSettings()), store, images, settings.prompt_max_tokens)
    )
    sweeper: list[asyncio.Task[None]] = []

    async def prepare_bucket() -> None:
        # Private: no bucket policy is ever set; clients get presigned URLs. A store that refuses us here
        # is not fatal: each upload then fails with a clear stage.failed, and recovers once it is fixed.
        try:
            await store.ensure_bucket()
        except Exception as exc:
            log.error("object store not ready at start-up", bucket=store.bucket, error=str(exc))

    async def start_sweeper() -> None:
        if settings.orphan_sweep_interval_seconds <= 0:
            return

        async def sweep() -> SweepReport:
            nc = await broker.connect()
            return await sweep_orphans(store, nc, older_than=timedelta(seconds=settings.orphan_after_seconds))

        interval = settings.orphan_sweep_interval_seconds
        # Replicas start together; a random first delay keeps their sweeps apart.
        task = asyncio.create_task(
            run_sweeper(sweep, interval, first_delay=random.uniform(0.1, 1.0) * interval)
        )
        sweeper.append(task)

    async def stop_sweeper() -> None:
        for task in sweeper:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        sweeper.clear()

    app, broker = stage_app(
        service="illustrator",
        settings=settings,
        consumer=ILLUSTRATOR,
        accepts=tuple(table),
        stage=Stage.image,
        handler=dispatch(table),
        on_startup=[prepare_bucket, start_sweeper],
        on_shutdown=[stop_sweeper],
    )
    return app
