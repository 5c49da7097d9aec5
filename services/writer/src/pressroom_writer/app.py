from __future__ import annotations

from faststream.asgi import AsgiFastStream

from pressroom_contracts.events import RegenerateRequestedEvent, ResearchCompletedEvent, Stage
from pressroom_contracts.topology import WRITER
from pressroom_runtime.llm import TextModel
from pressroom_runtime.service import stage_app
from pressroom_runtime.settings import LLMSettings

from .handlers import Writer
from .settings import WriterSettings


def create_app(settings: WriterSettings | None = None, model: TextModel | None = None) -> AsgiFastStream:
    settings = settings or WriterSettings()
    writer = Writer(model or TextModel(LLMSettings()), max_tokens=settings.max_tokens)
    app, _ = stage_app(
        service="writer",
        settings=settings,
        consumer=WRITER,
        accepts=(ResearchCompletedEvent, RegenerateRequestedEvent),
        stage=Stage.blog,
        handler=writer.on_event,
    )
    return app
