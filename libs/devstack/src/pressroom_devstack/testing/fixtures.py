"""The fixtures moved to the pressroom-testkit pytest plugin (pressroom_testkit.plugin), which pytest loads
by entry point: importing this module as a plugin adds nothing. Kept until the conftests in flight stop
naming it (to be removed)."""

from pressroom_testkit.plugin import PG_TEST_ROOT

__all__ = ["PG_TEST_ROOT"]
