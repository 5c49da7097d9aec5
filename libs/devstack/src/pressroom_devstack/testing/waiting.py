"""Moved to pressroom_testkit.waiting; re-exported here until the tests in flight have moved (to be removed)."""

from pressroom_testkit.waiting import *  # noqa: F403
