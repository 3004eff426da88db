"""Fixtures for the fake upstream tests: a real uvicorn server in a background thread.

``ServerThread`` is deliberately generic (any ASGI app, free port, clean shutdown) so other test
packages can reuse the server-in-a-thread idea. Nothing here touches Django or a database.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any

import httpx
import orjson
import pytest
import uvicorn

from fake_upstream import create_app

KEY = "sk-test-1234"
AUTH = {"Authorization": f"Bearer {KEY}"}
ANTHROPIC_AUTH = {"x-api-key": KEY, "anthropic-version": "2023-06-01"}


class ServerThread:
    """Serve an ASGI app with uvicorn on 127.0.0.1 and a free port, in a daemon thread."""

    def __init__(self, app: Any, host: str = "127.0.0.1") -> None:
        # log_config=None: leave the test process's logging alone.
        config = uvicorn.Config(
            app,
            host=host,
            port=0,
            log_config=None,
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=1,
            # As deployed: uvicorn never takes the client address from headers.
            proxy_headers=False,
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="uvicorn-test", daemon=True)
        self.host = host
        self.port = 0

    def start(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("test server did not start")
            time.sleep(0.01)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(10)

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def __enter__(self) -> ServerThread:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class Fake:
    """A handle on the running fake: URLs, an httpx client and its request history."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.http = httpx.Client(base_url=base_url, timeout=10)

    def requests(self) -> list[dict[str, Any]]:
        result: list[dict[str, Any]] = self.http.get("/_fake/requests").json()
        return result

    def wait_for(
        self, check: Callable[[list[dict[str, Any]]], bool], timeout: float = 2.0
    ) -> list[dict[str, Any]]:
        """Poll the history until ``check`` holds; server-side bookkeeping is asynchronous."""
        deadline = time.monotonic() + timeout
        while True:
            history = self.requests()
            if check(history) or time.monotonic() > deadline:
                return history
            time.sleep(0.02)


def sse_data(text: str) -> list[Any]:
    """The ``data:`` payloads of an SSE body, JSON-decoded where possible, in order."""
    out: list[Any] = []
    for line in text.split("\n"):
        if line.startswith("data: "):
            raw = line[6:]
            try:
                out.append(orjson.loads(raw))
            except orjson.JSONDecodeError:
                out.append(raw)
    return out


def sse_events(text: str) -> list[tuple[str, Any]]:
    """Anthropic-style ``(event, data)`` pairs."""
    pairs: list[tuple[str, Any]] = []
    for block in text.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.split("\n") if ": " in line)
        pairs.append((lines.get("event", ""), orjson.loads(lines["data"])))
    return pairs


def chat(content: str = "Hello there", /, **extra: Any) -> dict[str, Any]:
    return {"model": "test-model", "messages": [{"role": "user", "content": content}], **extra}


@pytest.fixture(scope="session")
def fake_server() -> Iterator[ServerThread]:
    with ServerThread(create_app()) as server:
        yield server


@pytest.fixture(scope="session")
def _fake_handle(fake_server: ServerThread) -> Iterator[Fake]:
    handle = Fake(fake_server.base_url)
    yield handle
    handle.http.close()


@pytest.fixture
def fake(_fake_handle: Fake) -> Fake:
    """The shared fake server with an empty request history."""
    _fake_handle.http.delete("/_fake/requests")
    return _fake_handle
