# Real servers on loopback for every test that asks for them: see pressroom_devstack.testing.fixtures.
pytest_plugins = ["pressroom_devstack.testing.fixtures"]
