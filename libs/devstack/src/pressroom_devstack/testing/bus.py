"""Moved to pressroom_testkit.bus; re-exported here until the tests in flight have moved (to be removed)."""

from pressroom_testkit.bus import *  # noqa: F403
