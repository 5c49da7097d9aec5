"""Moved to pressroom_testkit.events; re-exported here until the tests in flight have moved (to be removed)."""

from pressroom_testkit.events import *  # noqa: F403
