from __future__ import annotations

from faststream.asgi import AsgiFastStream

from pressroom_contracts.events import Stage
from pressroom_contracts.topology import WRITER
from pressroom_runtime.llm import TextModel
from pressroom_runtime.service import stage_app
from pressroom_runtime.settings import LLMSettings
from pressroom_runtime.stage import dispatch

from .handlers import handlers
from .settings import WriterSettings
from .writer import Writer


def create_app(settings: WriterSettings | None = None, model: TextModel | None = None) -> AsgiFastStream:
    settings = settings or WriterSettings()
    table = handlers(Writer(model or TextModel(LLMSettings()), max_tokens=settings.max_tokens))
    app, _ = stage_app(
        service="writer",
        settings=settings,
        consumer=WRITER,
        accepts=tuple(table),
        stage=Stage.blog,
        handler=dispatch(table),
    )
    return app
