"""Django's Redis cache on any URL Baton reads: one server, Sentinel or Cluster.

Django's own backend (``django.core.cache.backends.redis``) makes its clients from
``redis://`` URLs only. This one keeps all of Django's behaviour (serialisation, timeouts,
key versions) and takes its client from ``config.redis_clients``: one client per process.
On a cluster, the calls that name several keys (``get_many``, ``set_many``) go key by key
in a non-transactional pipeline, since the keys of a cache need not share a slot.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from django.core.cache.backends.redis import RedisCache, RedisCacheClient

from config.redis_clients import is_cluster, sync_client


class BatonRedisCacheClient(RedisCacheClient):
    def __init__(self, servers: list[str], **options: Any) -> None:
        super().__init__(servers, **options)
        self._url = servers[0]
        self._cluster = is_cluster(self._url)
        self._shared: Any = None
        self.serializer: Any = self._serializer  # type: ignore[attr-defined]

    def get_client(self, key: Any = None, *, write: bool = False) -> Any:
        if self._shared is None:
            self._shared = sync_client(self._url, socket_timeout=2, socket_connect_timeout=2)
        return self._shared

    def get_many(self, keys: Any) -> dict[Any, Any]:
        if not self._cluster:
            return dict(super().get_many(keys))
        keys = list(keys)
        values = self.get_client().mget_nonatomic(keys)
        return {
            k: self.serializer.loads(v) for k, v in zip(keys, values, strict=True) if v is not None
        }

    def set_many(self, data: Mapping[Any, Any], timeout: Any) -> None:
        if not self._cluster:
            super().set_many(data, timeout)
            return
        pipeline = self.get_client().pipeline(transaction=False)
        for key, value in data.items():
            if timeout == 0:
                pipeline.delete(key)
            else:
                pipeline.set(key, self.serializer.dumps(value), ex=timeout)
        pipeline.execute()


class BatonRedisCache(RedisCache):
    def __init__(self, server: str | list[str], params: dict[str, Any]) -> None:
        # A list (settings.CACHES): Django splits a string at its commas, which a Sentinel or
        # Cluster URL has.
        super().__init__(server, params)
        self._class = BatonRedisCacheClient
