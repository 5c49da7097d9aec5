from pressroom_runtime.service import serve

from .app import create_app
from .settings import WriterSettings

settings = WriterSettings()
serve(create_app(settings), settings, service="writer")
