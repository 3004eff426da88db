"""The pipelined limits connection (gateway/redis_pipe.py) on Sentinel and on Redis Cluster.

``pipelined(url, timeout)`` gives the connection a limits URL needs
(config/redis_clients.py reads the URL):

- one server: ``PipelinedRedis`` as it is;
- Sentinel: ``SentinelPipelinedRedis``, the same one connection, to the primary the sentinels
  name when it connects. A failover ends it (Sentinel disconnects the clients of the server it
  demotes, a dead primary refuses them, and a ``READONLY`` reply counts as a lost connection),
  and the next call asks the sentinels again;
- Cluster: ``ClusterPipelinedRedis``, one pipelined connection per primary and the slot table
  (``CLUSTER SLOTS``) to pick one. Every call of the quota script touches the keys of one team
  only, all under the team's hash tag (billing/quota/script.py), so one slot and one primary
  answer it. ``MOVED`` updates the table and retries; a lost connection, ``CLUSTERDOWN`` or
  ``TRYAGAIN`` mark the table stale, and it is read again (at most every ``REFRESH_EVERY``
  seconds) before the next call.

Calls that fail meanwhile fail as on one server (the admission step serves or refuses, as
configured, and trips its breaker); none is retried on another node unless Redis said to.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Sequence
from typing import Any

from redis.crc import key_slot
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError

from config.redis_clients import RedisTarget, parse
from gateway.redis_pipe import Arg, PipelinedRedis, Script, encode

SLOTS = 16384
REFRESH_EVERY = 0.25  # seconds between two readings of the slot table
REDIRECTIONS = 3
DOWN_FOR = 10.0  # seconds a node that refused a call is distrusted as a primary


def pipelined(url: str, timeout: float) -> LimitsRedis:
    """The pipelined connection for a limits Redis URL of any form."""
    target = parse(url)
    if target.kind == "sentinel":
        return SentinelPipelinedRedis(target, timeout)
    if target.kind == "cluster":
        return ClusterPipelinedRedis(target, timeout)
    return PipelinedRedis(url, timeout)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class SentinelPipelinedRedis(PipelinedRedis):
    """The pipelined connection to the primary a Sentinel group names, found again on each
    reconnection."""

    def __init__(self, target: RedisTarget, timeout: float) -> None:
        super().__init__(target.url, timeout, options=dict(target.options))
        self.service = target.service
        sentinel_options: dict[str, Any] = {
            k: v for k, v in target.options.items() if k.startswith("ssl")
        }
        sentinel_options.update(target.sentinel_auth)
        self.sentinels = [
            PipelinedRedis("", timeout, options={**sentinel_options, "host": h, "port": p})
            for h, p in target.nodes
        ]

    async def _address(self) -> tuple[str, int]:
        errors = []
        for index, sentinel in enumerate(self.sentinels):
            try:
                reply = await sentinel.execute("SENTINEL", "GET-MASTER-ADDR-BY-NAME", self.service)
            except Exception as exc:  # this sentinel is away: ask the next
                errors.append(f"{sentinel.options['host']}:{sentinel.options['port']}: {exc!r}")
                continue
            if not reply:
                errors.append(f"{sentinel.options['host']}:{sentinel.options['port']}: unknown")
                continue
            if index:  # ask the one that answered first next time (as redis-py does)
                self.sentinels.insert(0, self.sentinels.pop(index))
            return _text(reply[0]), int(reply[1])
        raise RedisConnectionError(
            f"No sentinel names a primary for {self.service!r}: {'; '.join(errors)}"
        )

    async def _open(self) -> Any:
        protocol = await super()._open()
        # A sentinel may still name the old primary for a moment after a failover.
        try:
            async with asyncio.timeout(self.timeout):
                role = await protocol.send(encode(["ROLE"]))
        except (ResponseError, RedisConnectionError, TimeoutError) as exc:
            protocol.fail(RedisConnectionError(f"ROLE failed: {exc!r}"))
            raise RedisConnectionError(f"The limits store did not say its role: {exc!r}") from exc
        if _text(role[0]) != "master":
            protocol.fail(RedisConnectionError("not the primary"))
            raise RedisConnectionError("The server Sentinel named is not the primary (yet).")
        return protocol

    async def aclose(self) -> None:
        await super().aclose()
        for sentinel in self.sentinels:
            await sentinel.aclose()


class ClusterPipelinedRedis:
    """Pipelined connections to a Redis Cluster's primaries, a call sent to the primary of
    its first key's slot."""

    def __init__(self, target: RedisTarget, timeout: float) -> None:
        self.timeout = timeout
        self.options = dict(target.options)
        self.seeds = list(target.nodes)
        self.table: list[tuple[str, int]] | None = None
        self.nodes: dict[tuple[str, int], PipelinedRedis] = {}
        self.stale = True
        self.refreshed_at = 0.0
        # Nodes a call could not reach lately: a table that still names one as a primary is
        # taken only when no node gives a better one (the failover is not known everywhere).
        self.down: dict[tuple[str, int], float] = {}
        self._refreshing: asyncio.Future[None] | None = None

    def node(self, address: tuple[str, int]) -> PipelinedRedis:
        connection = self.nodes.get(address)
        if connection is None:
            host, port = address
            connection = self.nodes[address] = PipelinedRedis(
                "", self.timeout, options={**self.options, "host": host, "port": port}
            )
        return connection

    async def evalsha(self, script: Script, keys: Sequence[Arg], args: Sequence[Arg]) -> Any:
        key = keys[0]
        slot = key_slot(key if isinstance(key, bytes) else str(key).encode())
        asking = False
        asking_node: PipelinedRedis | None = None
        for _ in range(REDIRECTIONS):
            if self.table is None or self.stale:
                # Without waiting out REFRESH_EVERY when the table names a primary that just
                # refused us: that is when a failover is being learnt.
                await self.refresh(force=self.table is not None and self.table[slot] in self.down)
            assert self.table is not None
            connection = asking_node if asking and asking_node else self.node(self.table[slot])
            try:
                if asking:
                    asking = False
                    # ASKING applies to the command after it on the same connection; both go
                    # out in one write (the connection pipelines a loop turn's commands).
                    _, reply = await asyncio.gather(
                        connection.execute("ASKING"), connection.evalsha(script, keys, args)
                    )
                    return reply
                return await connection.evalsha(script, keys, args)
            except ResponseError as exc:
                message = str(exc)
                if message.startswith("MOVED "):
                    address = _address(message.split()[2])
                    self.table[slot] = address
                    self.stale = True  # one slot moved: others likely did too
                    continue
                if message.startswith("ASK "):
                    asking_node = self.node(_address(message.split()[2]))
                    asking = True
                    continue
                if message.startswith(("CLUSTERDOWN", "TRYAGAIN")):
                    self.stale = True
                raise
            except RedisConnectionError:
                self.stale = True
                self.down[connection_address(connection)] = time.monotonic()
                raise
        raise RedisConnectionError("The limits store kept redirecting the call.")

    async def refresh(self, force: bool = False) -> None:
        """Read the slot table, once for every caller waiting on it."""
        recent = time.monotonic() - self.refreshed_at < REFRESH_EVERY
        if self.table is not None and recent and not force and self._refreshing is None:
            return
        if self._refreshing is None:
            self._refreshing = asyncio.ensure_future(self._refresh())
            self._refreshing.add_done_callback(lambda done: done.cancelled() or done.exception())
        refreshing = self._refreshing
        try:
            await asyncio.shield(refreshing)
        finally:
            if refreshing.done() and self._refreshing is refreshing:
                self._refreshing = None

    async def _refresh(self) -> None:
        now = self.refreshed_at = time.monotonic()
        down = {a for a, at in self.down.items() if now - at < DOWN_FOR}
        self.down = {a: self.down[a] for a in down}
        candidates = list(dict.fromkeys([*self.nodes, *self.seeds]))
        random.shuffle(candidates)
        candidates.sort(key=lambda address: address in down)  # the reachable ones first
        errors = []
        fallback: list[tuple[str, int]] | None = None
        for address in candidates:
            try:
                reply = await self.node(address).execute("CLUSTER", "SLOTS")
            except Exception as exc:  # this node is away: ask another
                errors.append(f"{address[0]}:{address[1]}: {exc!r}")
                continue
            table: list[tuple[str, int] | None] = [None] * SLOTS
            for start, end, primary, *_replicas in reply:
                host = _text(primary[0]) or address[0]
                if host == "?":
                    continue
                for slot in range(int(start), int(end) + 1):
                    table[slot] = (host, int(primary[1]))
            if any(entry is None for entry in table):
                errors.append(f"{address[0]}:{address[1]}: not every slot is served")
                continue
            full = [entry for entry in table if entry is not None]
            if down & set(full):
                fallback = fallback or full  # names a primary we could not reach: ask on
                continue
            await self._take(full, trusted=True)
            return
        if fallback is not None:
            # Every node still names it: the failover has not happened (yet). Use the table,
            # and read it again at the next call.
            await self._take(fallback, trusted=False)
            return
        raise RedisConnectionError(f"No cluster node gave a full slot table: {'; '.join(errors)}")

    async def _take(self, table: list[tuple[str, int]], trusted: bool) -> None:
        self.table = table
        self.stale = not trusted
        for gone in set(self.nodes) - set(table) - set(self.seeds):
            await self.nodes.pop(gone).aclose()

    async def aclose(self) -> None:
        for connection in self.nodes.values():
            await connection.aclose()


def connection_address(connection: PipelinedRedis) -> tuple[str, int]:
    return connection.options.get("host", ""), int(connection.options.get("port", 0))


def _address(text: str) -> tuple[str, int]:
    host, _, port = text.rpartition(":")
    return host, int(port)


LimitsRedis = PipelinedRedis | ClusterPipelinedRedis
