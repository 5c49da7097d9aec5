from __future__ import annotations

from faststream.asgi import AsgiFastStream

from pressroom_contracts.events import Stage
from pressroom_contracts.topology import RESEARCH
from pressroom_runtime.service import stage_app
from pressroom_runtime.stage import dispatch

from .adapters.knowledge_base import KnowledgeBase
from .adapters.tavily import TavilySearch
from .handlers import handlers
from .researcher import Researcher
from .settings import ResearchSettings
from .sources import ResearchProvider


def choose_provider(settings: ResearchSettings) -> ResearchProvider:
    """Tavily when a key is set, otherwise the local knowledge base."""
    if settings.tavily_api_key is not None and settings.tavily_api_key.get_secret_value():
        return TavilySearch(
            settings.tavily_api_key.get_secret_value(),
            base_url=settings.tavily_base_url,
            timeout=settings.tavily_timeout,
        )
    return KnowledgeBase(settings.knowledge_dir, settings.min_score)


def create_app(
    settings: ResearchSettings | None = None, provider: ResearchProvider | None = None
) -> AsgiFastStream:
    settings = settings or ResearchSettings()
    provider = provider or choose_provider(settings)
    table = handlers(Researcher(provider, settings.max_sources))
    app, _ = stage_app(
        service="research",
        settings=settings,
        consumer=RESEARCH,
        accepts=tuple(table),
        stage=Stage.research,
        handler=dispatch(table),
        on_shutdown=[provider.close],
    )
    return app
