import gc

from pressroom_runtime import gcpolicy


def test_tune_freezes_what_start_up_built_and_raises_the_thresholds():
    before = gc.get_threshold()
    try:
        gcpolicy.tune()
        assert gc.get_threshold() == gcpolicy.THRESHOLDS
        assert gc.get_freeze_count() > 0  # start-up's objects are out of every later pass
    finally:
        gc.unfreeze()
        gc.set_threshold(*before)
