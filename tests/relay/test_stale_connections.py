"""An upstream that closes an idle keep-alive connection as Baton reuses it.

Servers keep idle connections open for less time than Baton's pool does (uvicorn 5 s, many
load balancers 60 s or less), and a request that goes out on such a connection just as the
server closes it fails before any response (aiohttp's ``ServerDisconnectedError``). Baton
sends it once more on another connection, as it would send it to the next target, instead
of answering 502. The upstream here answers the first request of each connection and closes
the connection, unanswered, when a second one arrives on it.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import socket
import struct
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import aiohttp
import httpx
import orjson
import pytest
from aiohttp.client_reqrep import ConnectionKey

from gateway.upstream import closed_under_us
from scripts.services import free_port
from tests.relay.conftest import Relay, make_credential, make_route

COMPLETION = orjson.dumps(
    {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "created": 1,
        "model": "demo-chat",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": "hello"},
                "finish_reason": "stop",
            }
        ],
        "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
    }
)


class OneRequestPerConnection:
    """Answers the first request of a connection (keep-alive), closes it at the second."""

    def __init__(self, hold_until: int = 0, reset: bool = False) -> None:
        self.port = free_port()
        self.reset = reset  # close with a reset (RST) rather than an end of file (FIN)
        # The first answers wait until this many connections are open (or a second has
        # passed): requests sent together then leave as many connections in Baton's pool.
        self.hold_until = hold_until
        self.all_open = asyncio.Event()
        self.connections = 0
        self.answered = 0
        self.closed_unanswered = 0
        self.writers: set[asyncio.StreamWriter] = set()
        self.handlers: set[asyncio.Task[None]] = set()
        self.stopping = asyncio.Event()  # bound to the loop that first waits on it
        self.loop = asyncio.new_event_loop()
        self.ready = threading.Event()
        self.thread = threading.Thread(target=self.run, daemon=True)

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.serve())
        finally:
            self.loop.close()

    async def serve(self) -> None:
        server = await asyncio.start_server(self.handle, "127.0.0.1", self.port)
        self.ready.set()
        async with server:
            await self.stopping.wait()
            # Close the connections Baton's pool keeps open, their handlers with them,
            # before the loop goes: a handler left waiting would be closed with the loop.
            server.close()
            for writer in self.writers:
                writer.close()
            if self.handlers:
                await asyncio.wait(self.handlers)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections >= self.hold_until:
            self.all_open.set()
        self.writers.add(writer)
        task = asyncio.current_task()
        assert task is not None
        self.handlers.add(task)
        served = 0
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    name, _, value = line.partition(b":")
                    if name.strip().lower() == b"content-length":
                        length = int(value)
                await reader.readexactly(length)
                if served:
                    self.closed_unanswered += 1
                    if self.reset:
                        sock = writer.get_extra_info("socket")
                        sock.setsockopt(
                            socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                        )
                    break  # as a server closing an idle connection the moment it is reused
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self.all_open.wait(), 1.0)
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n"
                    b"content-length: %d\r\nconnection: keep-alive\r\n\r\n%s"
                    % (len(COMPLETION), COMPLETION)
                )
                await writer.drain()
                served += 1
                self.answered += 1
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.writers.discard(writer)
            self.handlers.discard(task)

    def __enter__(self) -> OneRequestPerConnection:
        self.thread.start()
        self.ready.wait(10)
        return self

    def __exit__(self, *exc: Any) -> None:
        self.loop.call_soon_threadsafe(self.stopping.set)
        self.thread.join(10)


@pytest.fixture(params=["closed", "reset"])
def upstream(request: pytest.FixtureRequest) -> Iterator[OneRequestPerConnection]:
    with OneRequestPerConnection(reset=request.param == "reset") as server:
        yield server


def route_to(relay: Relay, upstream: OneRequestPerConnection) -> None:
    credential = make_credential(relay.team, "closing", f"http://127.0.0.1:{upstream.port}/v1")
    make_route(relay.team, "closing", (credential, "demo-chat", 0))


def ask(relay: Relay, client: httpx.Client) -> int:
    return client.post(
        relay.base_url + "/v1/chat/completions",
        headers={"authorization": f"Bearer {relay.key}"},
        json={"model": "closing", "messages": [{"role": "user", "content": "hi"}]},
    ).status_code


def test_a_connection_the_upstream_closed_as_it_was_reused_is_not_a_502(
    relay: Relay, upstream: OneRequestPerConnection
) -> None:
    route_to(relay, upstream)
    with httpx.Client(timeout=10) as client:
        # One after another: each after the first reuses a connection.
        statuses = [ask(relay, client) for _ in range(4)]
    assert statuses == [200, 200, 200, 200], statuses
    assert upstream.answered == 4
    assert upstream.closed_unanswered >= 1  # the reused connections were refused, and retried


def test_every_pooled_connection_gone_stale_at_once_is_not_a_502(relay: Relay) -> None:
    """An upstream's idle timeout closes every connection that went idle together (the end
    of a busy minute) in the same instant. The request sent into that instant must not meet
    a second stale connection on its retry: it goes on a new one."""
    with OneRequestPerConnection(hold_until=6) as upstream:
        route_to(relay, upstream)
        with httpx.Client(timeout=10) as client:
            # Six at once: six connections in Baton's pool, each answered once.
            with ThreadPoolExecutor(6) as pool:
                assert list(pool.map(lambda _: ask(relay, client), range(6))) == [200] * 6
            assert upstream.connections == 6
            # Now each pooled connection is stale: three requests one after another.
            statuses = [ask(relay, client) for _ in range(3)]
    assert statuses == [200, 200, 200], statuses
    assert upstream.closed_unanswered >= 1


KEY = ConnectionKey("upstream.example", 443, True, True, None, None, None)


@pytest.mark.parametrize(
    ("error", "sent_again"),
    [
        (aiohttp.ServerDisconnectedError(), True),
        (aiohttp.ClientOSError(errno.ECONNRESET, "Connection reset by peer"), True),
        (aiohttp.ClientOSError(None, "Can not write request body for http://x/v1"), True),
        (aiohttp.ClientConnectionResetError("Cannot write to closing transport"), True),
        (aiohttp.ClientConnectorError(KEY, OSError(errno.ECONNREFUSED, "refused")), False),
        (aiohttp.ClientPayloadError("Response payload is not completed"), False),
    ],
    ids=["eof", "reset", "closing-on-write", "closing-transport", "refused", "payload"],
)
def test_which_failures_are_sent_again(error: BaseException, sent_again: bool) -> None:
    """Broken before the response began: sent again on a new connection. Never opened
    (refused, DNS, TLS): the next target's business, as any other failure."""
    assert closed_under_us(error) is sent_again
