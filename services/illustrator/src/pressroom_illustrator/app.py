from __future__ import annotations

from faststream.asgi import AsgiFastStream

from pressroom_contracts.events import BlogCompletedEvent, RegenerateRequestedEvent, Stage
from pressroom_contracts.topology import ILLUSTRATOR
from pressroom_runtime.llm import TextModel
from pressroom_runtime.objectstore import ObjectStore
from pressroom_runtime.service import stage_app
from pressroom_runtime.settings import LLMSettings, S3Settings

from .handlers import Illustrator
from .settings import IllustratorSettings


def create_app(
    settings: IllustratorSettings | None = None,
    model: TextModel | None = None,
    store: ObjectStore | None = None,
) -> AsgiFastStream:
    settings = settings or IllustratorSettings()
    store = store or ObjectStore(S3Settings())
    illustrator = Illustrator(model or TextModel(LLMSettings()), store, settings.prompt_max_tokens)
    app, _ = stage_app(
        service="illustrator",
        settings=settings,
        consumer=ILLUSTRATOR,
        accepts=(BlogCompletedEvent, RegenerateRequestedEvent),
        stage=Stage.image,
        handler=illustrator.on_blog,
        on_startup=[store.ensure_bucket],
    )
    return app
