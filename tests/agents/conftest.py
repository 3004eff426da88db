"""Fixtures for the agent CLI tests: Baton's fake upstream on a free port."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from fake_upstream import create_app
from tests.fake_upstream.conftest import Fake, ServerThread


@pytest.fixture(scope="module")
def _agent_fake() -> Iterator[Fake]:
    with ServerThread(create_app()) as server:
        handle = Fake(server.base_url)
        yield handle
        handle.http.close()


@pytest.fixture
def fake(_agent_fake: Fake) -> Fake:
    """The fake upstream with an empty request history."""
    _agent_fake.http.delete("/_fake/requests")
    return _agent_fake
