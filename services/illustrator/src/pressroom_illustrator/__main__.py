from pressroom_runtime.service import serve

from .app import create_app
from .settings import IllustratorSettings

settings = IllustratorSettings()
serve(create_app(settings), settings, service="illustrator")
