"""Baton's HTTP client to the providers: one pooled aiohttp session per process, guarded
against unsafe addresses (relay/netguard.py), and what a failure of the exchange means.

A request goes out on a pooled keep-alive connection. Servers keep an idle connection open
for less time than Baton's pool does (uvicorn 5 s; many load balancers a minute), and one
that closes it just as Baton reuses it, or while a busy process has yet to read the close,
fails the request before any response. Such a request goes once more, on a new connection:
the connections that went idle with it are likely closing in the same instant, so another
pooled one could be as stale (tests/relay/test_stale_connections.py). Nothing of it was
answered, and a connection failure sends the same request to the next target anyway.

Failures become ``UpstreamError``s the hot path falls over on. A failing target is cooled
down (gateway/cooldown.py), except when the failure is the credential's own configuration
(an address the guard refused).
"""

from __future__ import annotations

import errno
import logging
from typing import Any

import aiohttp
from django.conf import settings

from gateway import observability
from gateway.contexts import Target
from gateway.cooldown import Cooldowns
from relay.netguard import AddressPolicy, guarded_connector, unsafe_address_cause
from wire.providers import UpstreamError

log = logging.getLogger("baton.relay")

KEEPALIVE_SECONDS = 60  # a warm TLS connection to a provider saves a handshake per request


class Upstreams:
    def __init__(self, cooldowns: Cooldowns) -> None:
        self.cooldowns = cooldowns
        self.session: aiohttp.ClientSession | None = None
        self.fresh_session: aiohttp.ClientSession | None = None

    def start(self) -> None:
        """Open the sessions (inside the running event loop)."""
        policy = AddressPolicy(
            allow_private=settings.BATON_ALLOW_PRIVATE_UPSTREAMS,
            allow_loopback=settings.BATON_ALLOW_LOOPBACK_UPSTREAMS,
        )
        self.session = session(
            guarded_connector(
                policy, limit=0, ttl_dns_cache=300, keepalive_timeout=KEEPALIVE_SECONDS
            )
        )
        # For the one retry of a request whose pooled connection broke: a new connection
        # each time.
        self.fresh_session = session(
            guarded_connector(policy, limit=0, ttl_dns_cache=300, force_close=True)
        )

    @property
    def started(self) -> bool:
        return self.session is not None

    async def close(self) -> None:
        for opened in (self.session, self.fresh_session):
            if opened is not None:
                await opened.close()

    async def send(
        self, target: Target, method: str, url: str, headers: Any, body: bytes | None = None
    ) -> aiohttp.ClientResponse:
        """The request to the upstream, up to its response's head."""
        assert self.session is not None and self.fresh_session is not None  # started
        try:
            return await self.session.request(method, url, headers=headers, data=body)
        except aiohttp.ClientConnectionError as exc:
            if not closed_under_us(exc):
                raise
            observability.upstream_error(target.upstream.provider, "reused_connection_closed")
            return await self.fresh_session.request(method, url, headers=headers, data=body)

    def connection_error(self, target: Target, exc: BaseException) -> UpstreamError:
        """The exchange failed before a response: unreachable, timed out, or refused by the
        address guard."""
        unsafe = unsafe_address_cause(exc)
        if unsafe is not None:
            # A configuration problem of this credential, not an outage: no cooldown.
            return UpstreamError(
                502,
                f"Provider credential {target.credential_name!r}: {unsafe}",
                kind="other",
                code="upstream_address_refused",
                retryable=True,
            )
        self.cooldowns.record(target.key, ok=False)
        # The client gets a general message; the operator needs the cause (refused, reset,
        # DNS, TLS...), which names no secret: the exception's class and its OS error.
        log.warning(
            "upstream %s (%s) failed before its response: %s",
            target.provider_name,
            target.credential_name,
            connection_cause(exc),
        )
        what = "timed out" if isinstance(exc, TimeoutError) else "could not be reached"
        return UpstreamError(
            504 if isinstance(exc, TimeoutError) else 502,
            f"Upstream {target.provider_name} ({target.credential_name}) {what}.",
            kind="server",
            code="upstream_timeout" if isinstance(exc, TimeoutError) else "upstream_unreachable",
        )

    def failed(self, target: Target, error: UpstreamError) -> UpstreamError:
        """The upstream answered with an error: counted, cooled down when another target
        may do better, and passed on without the key it was sent."""
        error.scrub_secret(target.upstream.api_key)
        observability.upstream_error(target.upstream.provider, error.code or error.kind)
        if error.retryable:
            self.cooldowns.record(
                target.key, ok=False, retry_after=error.retry_after if error.status == 429 else None
            )
        if error.kind == "auth":
            # The team's provider key was refused: never report it as a bad Baton key.
            return UpstreamError(
                502,
                f"Provider credential {target.credential_name!r} was rejected by "
                f"{target.provider_name}: {error.message}",
                kind="auth",
                code="upstream_auth_failed",
                type="upstream_error",
                retryable=True,
            )
        return error


def session(connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(
            total=settings.BATON_TOTAL_TIMEOUT,
            sock_connect=settings.BATON_CONNECT_TIMEOUT,
            sock_read=settings.BATON_IDLE_TIMEOUT,
        ),
        trust_env=False,  # a proxy would resolve upstream hosts past the address guard
        auto_decompress=True,
    )


def closed_under_us(exc: BaseException) -> bool:
    """The connection broke before the upstream's response began: closed (end of file),
    reset, or found closing as the request was written (``ClientOSError`` with no errno:
    "Can not write request body"); which one a client sees depends on timing alone. A
    connection that could not be opened is another failure (``ClientConnectorError``), the
    next target's business. The same line aiohttp draws for its own retry of idempotent
    requests (RFC 9112 section 9.3.1.1); a POST is sent again here because nothing of it
    was answered, as it would be sent to the next target."""
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientConnectionResetError):
        return True
    return isinstance(exc, aiohttp.ClientOSError) and not isinstance(
        exc, aiohttp.ClientConnectorError
    )


def connection_cause(exc: BaseException) -> str:
    """What failed, for the log: the exception's class and the OS error under it (never its
    text, which may hold the URL, and a URL may hold a provider's key)."""
    cause = type(exc).__name__
    os_error = exc if isinstance(exc, OSError) else getattr(exc, "os_error", None)
    if isinstance(os_error, OSError) and os_error.errno is not None:
        cause += f" ({errno.errorcode.get(os_error.errno, os_error.errno)})"
    return cause
