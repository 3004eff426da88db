"""Fixtures for the agent CLI tests: the fake upstream (``fake``, history emptied) and, for
the CLIs driven through Baton, a running relay in front of it (``relay``, ``redis_client``),
the same fixtures tests/relay uses."""

from tests.relay.conftest import fake, fake_upstream, redis_client, relay  # noqa: F401
