from pressroom_runtime.service import serve

from .app import create_app
from .settings import ResearchSettings

settings = ResearchSettings()
serve(create_app(settings), settings, service="research")
