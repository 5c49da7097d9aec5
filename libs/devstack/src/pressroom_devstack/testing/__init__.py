"""Test helpers: a scripted OpenAI-compatible server, a builder of valid job events and the pytest
fixtures (pressroom_devstack.testing.fixtures)."""

from .events import JobEvents
from .scripted_llm import RecordedRequest, ScriptedLLM

__all__ = ["JobEvents", "RecordedRequest", "ScriptedLLM"]
