"""Pressroom's test kit: the pytest plugin (pressroom_testkit.plugin, loaded by entry point), a scripted
OpenAI-compatible server, a builder of valid job events, the test's own NATS connection (TestBus), the
server's monitoring view (NatsMonitor), services as subprocesses (ServiceRunner), a StageContext without
a broker that records what a handler did (FakeStageContext) and polling (eventually)."""

from .bus import TestBus
from .events import JobEvents
from .monitor import NatsMonitor
from .runner import ServiceRunner
from .scripted_llm import RecordedRequest, ScriptedLLM, solid_png
from .stage import FakeStageContext
from .waiting import eventually

__all__ = [
    "FakeStageContext",
    "JobEvents",
    "NatsMonitor",
    "RecordedRequest",
    "ScriptedLLM",
    "ServiceRunner",
    "TestBus",
    "eventually",
    "solid_png",
]
