from __future__ import annotations

from faststream.asgi import AsgiFastStream

from pressroom_contracts.events import BlogCompletedEvent, RegenerateRequestedEvent, Stage
from pressroom_contracts.topology import SOCIAL
from pressroom_runtime.llm import TextModel
from pressroom_runtime.service import stage_app
from pressroom_runtime.settings import LLMSettings

from .handlers import Social
from .settings import SocialSettings


def create_app(settings: SocialSettings | None = None, model: TextModel | None = None) -> AsgiFastStream:
    settings = settings or SocialSettings()
    social = Social(
        model or TextModel(LLMSettings()),
        max_tokens=settings.max_tokens,
        thread_max_tokens=settings.thread_max_tokens,
    )
    app, _ = stage_app(
        service="social",
        settings=settings,
        consumer=SOCIAL,
        accepts=(BlogCompletedEvent, RegenerateRequestedEvent),
        stage=Stage.social,
        handler=social.on_event,
    )
    return app
