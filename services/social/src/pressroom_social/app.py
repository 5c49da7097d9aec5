from __future__ import annotations

from faststream.asgi import AsgiFastStream

from pressroom_contracts.events import Stage
from pressroom_contracts.topology import SOCIAL
from pressroom_runtime.llm import TextModel
from pressroom_runtime.service import stage_app
from pressroom_runtime.settings import LLMSettings
from pressroom_runtime.stage import dispatch

from .copywriter import Copywriter
from .handlers import handlers
from .settings import SocialSettings


def create_app(settings: SocialSettings | None = None, model: TextModel | None = None) -> AsgiFastStream:
    settings = settings or SocialSettings()
    table = handlers(
        Copywriter(
            model or TextModel(LLMSettings()),
            max_tokens=settings.max_tokens,
            thread_max_tokens=settings.thread_max_tokens,
        )
    )
    app, _ = stage_app(
        service="social",
        settings=settings,
        consumer=SOCIAL,
        accepts=tuple(table),
        stage=Stage.social,
        handler=dispatch(table),
    )
    return app
