"""Moved to pressroom_testkit.scripted_llm; re-exported here until the tests in flight have moved (to be removed)."""

from pressroom_testkit.scripted_llm import *  # noqa: F403
