from pressroom_runtime.service import serve

from .app import create_app
from .settings import SocialSettings

settings = SocialSettings()
serve(create_app(settings), settings, service="social")
