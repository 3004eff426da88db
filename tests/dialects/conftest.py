"""The relay fixtures (a running Baton and the fake upstream) for the dialect tests."""

from tests.relay.conftest import fake, fake_upstream, redis_client, relay  # noqa: F401
