"""Test helpers: a scripted OpenAI-compatible server and the pytest fixtures (pressroom_devstack.testing.fixtures)."""

from .scripted_llm import RecordedRequest, ScriptedLLM

__all__ = ["RecordedRequest", "ScriptedLLM"]
