"""Image providers behind one small protocol: the embedded cover-card renderer and OpenAI images."""

from .base import Drawing, ImageProvider, Picture
from .cover import CoverCardProvider
from .openai_images import OpenAIImageProvider

__all__ = ["CoverCardProvider", "Drawing", "ImageProvider", "OpenAIImageProvider", "Picture"]
