"""Moved to pressroom_testkit.processes; re-exported here until the tests in flight have moved (to be removed)."""

from pressroom_testkit.processes import *  # noqa: F403
