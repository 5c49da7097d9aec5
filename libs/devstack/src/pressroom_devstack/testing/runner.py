"""Moved to pressroom_testkit.runner; re-exported here until the tests in flight have moved (to be removed)."""

from pressroom_testkit.runner import *  # noqa: F403
