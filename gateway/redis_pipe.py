"""A pipelined Redis connection for the two quota calls every request makes.

Every /v1 request runs the admission script twice (admit, then settle). Through redis-py's
asyncio client each call cost several times the CPU it costs here (bench/choices.py), and
several event-loop turns (a pool checkout that probes the socket, a task for the timeout, the
reply) plus a write system call of its own; under load that was the largest share of Baton's
own time and of its tail latency. Here all calls of a process share one connection: commands
made in the same loop turn go out in one write (automatic pipelining), replies are parsed by
hiredis (the parser redis-py itself uses) straight from the protocol callback and resolve the
waiting futures in order. bench/choices.py measures both clients (BENCHMARKS.md, "Choices").

Redis answers the commands of one connection in the order it received them, so replies
are matched to callers by position. A caller that gives up (timeout, cancellation) leaves
its slot in the queue and its reply is dropped when it arrives. A connection that delivered
nothing while two callers in a row waited out their whole timeout is taken for dead and
replaced; every
other failure of the connection fails the calls waiting on it with ``ConnectionError`` and
the next call reconnects.

Only what the limits store needs: ``redis://``, ``rediss://`` and ``unix://`` URLs (parsed
by redis-py, so they mean what they mean everywhere else in Baton), AUTH and SELECT, and
scripts by SHA with a fallback to EVAL when the server has not seen them (a restart or a
``SCRIPT FLUSH``). Errors are redis-py's exception classes. A ``READONLY`` reply (the server
became a replica in a failover) counts as a lost connection, so the next call reconnects.
Sentinel and Cluster URLs get the same connection to the primary Sentinel names, or one per
cluster primary: gateway/redis_topology.py.
"""

from __future__ import annotations

import asyncio
import hashlib
import ssl
import time
from collections import deque
from collections.abc import Sequence
from typing import Any, cast

import hiredis
from redis.asyncio.connection import parse_url
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import InvalidResponse, NoScriptError, ReadOnlyError, ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

Arg = str | bytes | int | float
MAX_PENDING = 20_000  # calls waiting on one connection before new ones are refused


def encode(args: Sequence[Arg]) -> bytes:
    """One command in the Redis protocol (RESP2), by hiredis (C: a third of the pure-Python
    cost for the admission script's ~40 arguments)."""
    return hiredis.pack_command(cast(Any, tuple(args)))  # its stub wants a 1-tuple


class _Protocol(asyncio.Protocol):
    def __init__(self, on_lost: Any) -> None:
        self.reader = hiredis.Reader(protocolError=InvalidResponse, replyError=ResponseError)
        self.waiters: deque[asyncio.Future[Any]] = deque()
        self.outgoing: list[bytes] = []
        self.transport: asyncio.Transport | None = None
        self.replied_at = time.monotonic()
        self.silent_timeouts = 0  # callers that timed out with no reply at all meanwhile
        self.on_lost = on_lost
        self.lost = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's do not subclass it

    def data_received(self, data: bytes) -> None:
        self.replied_at = time.monotonic()
        self.silent_timeouts = 0
        self.reader.feed(data)
        while True:
            try:
                reply = self.reader.gets()
            except InvalidResponse as exc:
                self.fail(RedisConnectionError(f"Protocol error from the limits store: {exc}"))
                return
            if reply is False:
                return
            if not self.waiters:
                self.fail(RedisConnectionError("The limits store sent a reply nobody asked for."))
                return
            waiter = self.waiters.popleft()
            if waiter.done():
                continue  # its caller gave up
            if isinstance(reply, ResponseError):
                waiter.set_exception(error_for(reply))
            else:
                waiter.set_result(reply)

    def connection_lost(self, exc: Exception | None) -> None:
        self.fail(
            RedisConnectionError(f"Lost the connection to the limits store: {exc or 'closed'}")
        )

    def send(self, command: bytes) -> asyncio.Future[Any]:
        if self.lost:
            raise RedisConnectionError("The connection to the limits store is closed.")
        if len(self.waiters) >= MAX_PENDING:
            raise RedisConnectionError("Too many calls waiting on the limits store.")
        loop = asyncio.get_running_loop()
        if not self.outgoing:
            loop.call_soon(self.flush)  # everything asked for in this loop turn, in one write
        self.outgoing.append(command)
        waiter = loop.create_future()
        self.waiters.append(waiter)
        return waiter

    def flush(self) -> None:
        if self.outgoing and self.transport is not None and not self.lost:
            self.transport.write(b"".join(self.outgoing))
        self.outgoing.clear()

    def fail(self, error: Exception, abort: bool = True) -> None:
        if not self.lost:
            self.lost = True
            self.on_lost(self)
        if self.transport is not None:
            if abort:
                self.transport.abort()
            else:
                self.transport.close()  # after what is already written
        while self.waiters:
            waiter = self.waiters.popleft()
            if not waiter.done():
                waiter.set_exception(error)


def error_for(reply: ResponseError) -> ResponseError:
    message = str(reply)
    if message.startswith("NOSCRIPT"):
        return NoScriptError(message)
    if message.startswith("READONLY"):
        return ReadOnlyError(message)
    return reply


class PipelinedRedis:
    """One pipelined connection to a Redis server, opened on first use."""

    def __init__(self, url: str, timeout: float, options: dict[str, Any] | None = None) -> None:
        """``options`` (redis-py's connection keywords: host, port, password, ssl...) stand
        for the URL's when given (gateway/redis_topology.py's nodes)."""
        self.options = parse_url(url) if options is None else options
        self.tls = url.startswith("rediss://") or bool(self.options.get("ssl"))
        self.timeout = timeout
        self._protocol: _Protocol | None = None
        self._connecting: asyncio.Future[_Protocol] | None = None

    async def execute(self, *args: Arg) -> Any:
        """Send one command and wait for its reply, ``timeout`` seconds at most in all."""
        protocol: _Protocol | None = None
        sent_at = 0.0
        try:
            async with asyncio.timeout(self.timeout):
                protocol = self._protocol or await self._connect()
                sent_at = time.monotonic()
                return await protocol.send(encode(args))
        except ReadOnlyError as exc:
            # A replica now (a failover demoted it): reconnect, to the primary, next time.
            if protocol is not None:
                protocol.fail(RedisConnectionError(f"The limits store became a replica: {exc}"))
            raise RedisConnectionError(f"The limits store became a replica: {exc}") from None
        except TimeoutError:
            if protocol is not None and protocol.replied_at < sent_at:
                # Nothing at all came back while we waited. Twice in a row means a dead or
                # frozen server; once may be this process's own stalled event loop, whose
                # timers run before it reads the replies waiting in the socket.
                protocol.silent_timeouts += 1
                if protocol.silent_timeouts >= 2:
                    protocol.fail(RedisConnectionError("The limits store stopped answering."))
            raise RedisTimeoutError(
                f"The limits store did not answer in {self.timeout}s."
            ) from None

    async def evalsha(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        try:
            return await self.execute("EVALSHA", script.sha, len(keys), *keys, *args)
        except NoScriptError:
            # EVAL also puts the script in the server's cache for the next EVALSHA.
            return await self.execute("EVAL", script.source, len(keys), *keys, *args)

    async def aclose(self) -> None:
        protocol = self._protocol
        if protocol is not None:
            protocol.flush()
            protocol.fail(RedisConnectionError("The limits store client was closed."), abort=False)

    async def _connect(self) -> _Protocol:
        if self._connecting is None:
            self._connecting = asyncio.ensure_future(self._open())
            # Callers that gave up meanwhile never look at a failure: it is consumed here.
            self._connecting.add_done_callback(lambda done: done.cancelled() or done.exception())
        connecting = self._connecting
        try:
            return await asyncio.shield(connecting)
        finally:
            if connecting.done() and self._connecting is connecting:
                self._connecting = None

    async def _open(self) -> _Protocol:
        loop = asyncio.get_running_loop()
        options = self.options

        def make() -> _Protocol:
            return _Protocol(self._forget)

        try:
            async with asyncio.timeout(self.timeout):  # on its own: callers may have left
                if "path" in options:
                    _, protocol = await loop.create_unix_connection(make, options["path"])
                else:
                    host, port = await self._address()
                    _, protocol = await loop.create_connection(
                        make, host, port, ssl=self._ssl_context()
                    )
        except (OSError, TimeoutError) as exc:
            raise RedisConnectionError(f"Cannot reach the limits store: {exc!r}") from exc
        setup: list[list[Arg]] = []
        if options.get("password"):
            username = options.get("username")
            setup.append(
                ["AUTH", username, options["password"]]
                if username
                else ["AUTH", options["password"]]
            )
        if options.get("db"):
            setup.append(["SELECT", int(options["db"])])
        try:
            async with asyncio.timeout(self.timeout):
                for command in setup:
                    await protocol.send(encode(command))
        except (RedisConnectionError, ResponseError, TimeoutError) as exc:
            protocol.fail(RedisConnectionError(f"The limits store refused the connection: {exc!r}"))
            raise RedisConnectionError(f"The limits store refused the connection: {exc!r}") from exc
        self._protocol = protocol
        return protocol

    async def _address(self) -> tuple[str, int]:
        """Where to connect (a Sentinel-managed connection asks the sentinels)."""
        return self.options.get("host", "localhost"), int(self.options.get("port", 6379))

    def _ssl_context(self) -> ssl.SSLContext | None:
        if not self.tls:
            return None
        context = ssl.create_default_context(
            cafile=cast(str | None, self.options.get("ssl_ca_certs"))
        )
        if self.options.get("ssl_cert_reqs") in ("none", ssl.CERT_NONE):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return context

    def _forget(self, protocol: _Protocol) -> None:
        if self._protocol is protocol:
            self._protocol = None


class Script:
    """A Lua script known by its SHA-1, as Redis caches it."""

    def __init__(self, source: str) -> None:
        self.source = source
        self.sha = hashlib.sha1(source.encode()).hexdigest()  # noqa: S324 (Redis's own naming)
