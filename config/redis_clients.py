"""The one place that turns a Redis URL into clients: one server, a Sentinel group, a Cluster.

Every Redis client in Baton is made here (the relay's asyncio client, the consumer's, the
invalidation publisher's, the limits pages', Django's cache, Celery's broker URL) or, for the
relay's pipelined limits connection (gateway/redis_pipe.py), from the ``RedisTarget`` that
``parse`` gives. Three forms:

- ``redis://``, ``rediss://``, ``unix://``: one server, exactly as redis-py reads it.
- ``redis+sentinel://[[user]:password@]host[:port][,host[:port]...]/service[/db][?options]``
  (``rediss+sentinel://`` for TLS to the data nodes and the sentinels): the primary of the
  Sentinel group ``service``, found through any of the sentinels (port 26379 by default), and
  found again after a failover. The user and password are the data nodes'; the sentinels'
  own, if they require one, are the options ``sentinel_username`` and ``sentinel_password``.
  The grammar is the one the Redis-Sentinel-Url package defined and that RedisVL, LangChain
  and Prefect read: everything in one string, the service name included, which kombu's own
  ``sentinel://`` form lacks (it wants the master's name in a transport option), so Baton
  derives Celery's broker settings from it (``celery_broker``).
- ``redis+cluster://[[user]:password@]host[:port][,host[:port]...][/][?options]``
  (``rediss+cluster://`` for TLS): a Redis Cluster, discovered from any of the nodes named
  (port 6379 by default; database 0 only, as the cluster has no other).

Options are redis-py's URL options (``socket_timeout``, ``ssl_ca_certs``, ``ssl_cert_reqs``,
...) and apply to every data node; keyword arguments given to the constructors here win.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode

SENTINEL_SCHEMES = {"redis+sentinel": False, "rediss+sentinel": True}
CLUSTER_SCHEMES = {"redis+cluster": False, "rediss+cluster": True}
SINGLE_SCHEMES = {"redis", "rediss", "unix"}
SCHEMES = SINGLE_SCHEMES | set(SENTINEL_SCHEMES) | set(CLUSTER_SCHEMES)
SENTINEL_PORT = 26379
REDIS_PORT = 6379
SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")
FORMS = (
    "redis://, rediss://, unix://, redis+sentinel://host:26379[,host...]/service[/db] "
    "or redis+cluster://host:6379[,host...]"
)

Kind = Literal["single", "sentinel", "cluster"]


class RedisURLError(ValueError):
    """A Redis URL Baton cannot read; the message says what is wrong, never the password."""


@dataclass(frozen=True)
class RedisTarget:
    """What a Redis URL names."""

    kind: Kind
    url: str
    nodes: tuple[tuple[str, int], ...] = ()  # the sentinels, or the cluster's seed nodes
    service: str = ""  # the Sentinel service (the primary's name)
    db: int = 0
    tls: bool = False
    # Connection options of the data nodes, as redis-py's keyword arguments (no host or port).
    options: dict[str, Any] = field(default_factory=dict)
    sentinel_auth: dict[str, str] = field(default_factory=dict)  # username, password

    @property
    def replicated(self) -> bool:
        """Sentinel and Cluster have replicas by construction."""
        return self.kind != "single"


def scheme_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else ""


def is_cluster(url: str) -> bool:
    return scheme_of(url) in CLUSTER_SCHEMES


@functools.lru_cache(maxsize=32)
def parse(url: str) -> RedisTarget:
    """Read a Redis URL, or raise ``RedisURLError`` saying what is wrong with it."""
    scheme = scheme_of(url)
    if scheme in SINGLE_SCHEMES:
        return RedisTarget("single", url, options=_redis_py_options(url))
    if scheme in SENTINEL_SCHEMES:
        tls = SENTINEL_SCHEMES[scheme]
        netloc, path, query = _split(url)
        userinfo, nodes = _nodes(netloc, SENTINEL_PORT)
        parts = [unquote(p) for p in path.split("/") if p]
        if not parts:
            raise RedisURLError(
                f"a {scheme}:// URL names its service after the sentinels: "
                f"{scheme}://host:26379,host2:26379/mymaster[/db]"
            )
        if len(parts) > 2:
            raise RedisURLError(
                f"a {scheme}:// URL's path is /service[/db], got {len(parts)} parts"
            )
        service = parts[0]
        db = _db(parts[1]) if len(parts) == 2 else 0
        params = dict(parse_qsl(query, keep_blank_values=True))
        sentinel_auth = {
            name.removeprefix("sentinel_"): params.pop(name)
            for name in SENTINEL_OPTIONS
            if params.get(name)
        }
        options = _data_options(userinfo, params, tls, db)
        return RedisTarget("sentinel", url, nodes, service, db, tls, options, sentinel_auth)
    if scheme in CLUSTER_SCHEMES:
        tls = CLUSTER_SCHEMES[scheme]
        netloc, path, query = _split(url)
        userinfo, nodes = _nodes(netloc, REDIS_PORT)
        parts = [p for p in path.split("/") if p]
        if parts and (len(parts) > 1 or _db(parts[0]) != 0):
            raise RedisURLError("a Redis Cluster has only database 0: end the URL with / or /0")
        params = dict(parse_qsl(query, keep_blank_values=True))
        options = _data_options(userinfo, params, tls, 0)
        options.pop("db", None)
        return RedisTarget("cluster", url, nodes, tls=tls, options=options)
    raise RedisURLError(f"a Redis URL starts with one of {FORMS}; got {scheme or 'no scheme'!r}")


def _split(url: str) -> tuple[str, str, str]:
    rest = url.split("://", 1)[1]
    rest, _, _fragment = rest.partition("#")
    rest, _, query = rest.partition("?")
    netloc, slash, path = rest.partition("/")
    return netloc, slash + path, query


def _nodes(netloc: str, default_port: int) -> tuple[str, tuple[tuple[str, int], ...]]:
    userinfo, at, hosts = netloc.rpartition("@")
    if not at:
        userinfo, hosts = "", netloc
    nodes: list[tuple[str, int]] = []
    for item in hosts.split(","):
        item = item.strip()
        if not item:
            continue
        if item.startswith("["):  # [v6]:port
            host, _, port = item[1:].partition("]")
            port = port.removeprefix(":")
        else:
            host, _, port = item.rpartition(":") if ":" in item else (item, "", "")
        if not host:
            raise RedisURLError(f"a host is missing in {item!r}")
        try:
            number = int(port) if port else default_port
        except ValueError:
            raise RedisURLError(f"the port of {host!r} is not a number") from None
        if not 0 < number < 65536:
            raise RedisURLError(f"the port of {host!r} is out of range")
        nodes.append((unquote(host), number))
    if not nodes:
        raise RedisURLError("no host in the URL: name at least one, host:port[,host:port...]")
    return userinfo, tuple(nodes)


def _db(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise RedisURLError(f"the database must be a number, got {text!r}") from None
    if value < 0:
        raise RedisURLError("the database must be 0 or more")
    return value


def _redis_py_options(url: str) -> dict[str, Any]:
    from redis.connection import parse_url

    try:
        return dict(parse_url(url))
    except ValueError as exc:
        raise RedisURLError(str(exc)) from None


def _data_options(userinfo: str, params: dict[str, str], tls: bool, db: int) -> dict[str, Any]:
    """The data nodes' options, read by redis-py's own URL parser from an equivalent
    one-server URL, so each option means what it means in a ``redis://`` URL."""
    auth = ""
    if userinfo:
        user, colon, password = userinfo.partition(":")
        auth = quote(unquote(user), safe="") + (
            ":" + quote(unquote(password), safe="") if colon else ""
        )
        auth += "@"
    query = urlencode(params)
    options = _redis_py_options(
        f"{'rediss' if tls else 'redis'}://{auth}localhost/{db}" + (f"?{query}" if query else "")
    )
    options.pop("host", None)
    options.pop("port", None)
    options.pop("connection_class", None)
    if tls:
        options["ssl"] = True
    return options


# --- clients ----------------------------------------------------------------------------------
def sync_client(url: str, **kwargs: Any) -> Any:
    """A redis-py client (``redis.Redis``, or ``redis.cluster.RedisCluster`` for a cluster).
    ``kwargs`` (timeouts...) apply to every data node and, for their socket options, to the
    sentinels."""
    target = parse(url)
    if target.kind == "single":
        import redis

        return redis.Redis.from_url(url, **kwargs)
    options = {**target.options, **kwargs}
    if target.kind == "sentinel":
        from redis.sentinel import Sentinel

        sentinel = Sentinel(
            list(target.nodes), sentinel_kwargs=_sentinel_kwargs(target, options), **options
        )
        return sentinel.master_for(target.service)
    from redis.cluster import ClusterNode, RedisCluster

    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes], **options
    )


def async_client(url: str, **kwargs: Any) -> Any:
    """The same for asyncio: ``redis.asyncio.Redis`` or ``redis.asyncio.cluster.RedisCluster``."""
    target = parse(url)
    if target.kind == "single":
        import redis.asyncio as aioredis

        return aioredis.Redis.from_url(url, **kwargs)
    options = {**target.options, **kwargs}
    if target.kind == "sentinel":
        from redis.asyncio.sentinel import Sentinel

        sentinel = Sentinel(
            list(target.nodes), sentinel_kwargs=_sentinel_kwargs(target, options), **options
        )
        return sentinel.master_for(target.service)
    from redis.asyncio.cluster import ClusterNode, RedisCluster

    return RedisCluster(
        startup_nodes=[ClusterNode(host, port) for host, port in target.nodes], **options
    )


def async_node_client(url: str, host: str, port: int, **kwargs: Any) -> Any:
    """A ``redis.asyncio.Redis`` to one node of a cluster (or of a Sentinel group), with the
    URL's credentials and options: for commands that must share a connection with others
    no cluster client routes alike (``WAIT`` after a batch of writes)."""
    import redis.asyncio as aioredis

    return aioredis.Redis(host=host, port=port, **{**parse(url).options, **kwargs})


def _sentinel_kwargs(target: RedisTarget, options: dict[str, Any]) -> dict[str, Any]:
    """How to talk to the sentinels themselves: their own credentials, the data nodes'
    socket and TLS options."""
    kwargs = {
        name: value
        for name, value in options.items()
        if name.startswith("socket_") or name.startswith("ssl")
    }
    kwargs.update(target.sentinel_auth)
    return kwargs


def is_cluster_client(client: Any) -> bool:
    from redis.asyncio.cluster import RedisCluster as AsyncCluster
    from redis.cluster import RedisCluster

    return isinstance(client, RedisCluster | AsyncCluster)


# --- Celery -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Broker:
    """Celery's broker settings for a Redis URL."""

    url: str
    transport_options: dict[str, Any]
    use_ssl: dict[str, Any] | None = None


def celery_broker(url: str) -> Broker:
    """kombu's broker URL and transport options for a Baton Redis URL.

    A one-server URL is kombu's as it is. A Sentinel URL becomes kombu's ``sentinel://``
    form (one ``sentinel://host:port`` per sentinel, joined by ``;``, which kombu reads as
    alternatives) with the service as the ``master_name`` transport option and the sentinels'
    credentials in ``sentinel_kwargs``. kombu has no Redis Cluster transport, so a cluster
    URL is refused: Celery's broker is then a separate ``CELERY_BROKER_URL``."""
    target = parse(url)
    if target.kind == "single":
        return Broker(url, {})
    if target.kind == "cluster":
        raise RedisURLError(
            "Celery's broker (kombu) cannot use a Redis Cluster: set CELERY_BROKER_URL to a "
            "one-server Redis (redis://...), a Sentinel group (redis+sentinel://...) or another "
            "broker kombu supports"
        )
    auth = ""
    username = target.options.get("username")
    password = target.options.get("password")
    if username or password:
        auth = quote(str(username or ""), safe="") + (
            ":" + quote(str(password), safe="") if password else ""
        )
        auth += "@"
    hosts = [f"[{h}]" if ":" in h else h for h, _ in target.nodes]
    urls = [
        f"sentinel://{auth}{host}:{port}"
        for host, (_, port) in zip(hosts, target.nodes, strict=True)
    ]
    urls[-1] += f"/{target.db}"
    options: dict[str, Any] = {"master_name": target.service}
    sentinel_kwargs = _sentinel_kwargs(target, target.options)
    if sentinel_kwargs:
        options["sentinel_kwargs"] = sentinel_kwargs
    use_ssl = None
    if target.tls:
        use_ssl = {k: v for k, v in target.options.items() if k.startswith("ssl_")}
    return Broker(";".join(urls), options, use_ssl)


def redacted(url: str) -> str:
    """The URL without its passwords, for messages and logs."""
    scheme = scheme_of(url)
    if not scheme:
        return "<not a URL>"
    netloc, path, query = _split(url)
    _, at, hosts = netloc.rpartition("@")
    if at:
        netloc = "***@" + hosts
    params = [
        (k, "***" if "password" in k else v) for k, v in parse_qsl(query, keep_blank_values=True)
    ]
    return f"{scheme}://{netloc}{path}" + (f"?{urlencode(params)}" if params else "")


def describe(url: str) -> str:
    """One line for logs: the kind and where, no secrets."""
    try:
        target = parse(url)
    except RedisURLError:
        return redacted(url)
    if target.kind == "single":
        return redacted(url)
    nodes = ",".join(f"{h}:{p}" for h, p in target.nodes)
    if target.kind == "sentinel":
        return f"Sentinel service {target.service!r} via {nodes} (db {target.db})"
    return f"Redis Cluster via {nodes}"


__all__ = [
    "Broker",
    "RedisTarget",
    "RedisURLError",
    "async_client",
    "celery_broker",
    "describe",
    "is_cluster",
    "parse",
    "redacted",
    "sync_client",
]
