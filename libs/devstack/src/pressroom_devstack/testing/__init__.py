"""Test helpers: a scripted OpenAI-compatible server, a builder of valid job events, the test's own NATS
connection (TestBus), a StageContext without a broker (FakeStageContext), polling (eventually) and the
pytest fixtures (pressroom_devstack.testing.fixtures)."""

from .bus import TestBus
from .events import JobEvents
from .scripted_llm import RecordedRequest, ScriptedLLM
from .stage import FakeStageContext
from .waiting import eventually

__all__ = ["FakeStageContext", "JobEvents", "RecordedRequest", "ScriptedLLM", "TestBus", "eventually"]
