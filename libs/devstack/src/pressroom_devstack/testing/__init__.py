"""Moved to pressroom_testkit (the pressroom-testkit package); re-exported here until the tests in flight
have moved (to be removed)."""

from pressroom_testkit import JobEvents, RecordedRequest, ScriptedLLM, TestBus, eventually

__all__ = ["JobEvents", "RecordedRequest", "ScriptedLLM", "TestBus", "eventually"]
