"""The client's address: the one answer the relay's key allow-lists, ``/metrics``, the
sign-in rate limits and the audit log all use.

``X-Forwarded-For`` is written by whoever sent the request, so it is believed only as far as
a chain of proxies the operator named in ``BATON_TRUSTED_PROXIES`` vouches for it. Starting
from the direct peer (the TCP connection's other end), while the current address is a
trusted proxy, step one entry to the left in ``X-Forwarded-For``: the entry a trusted proxy
appended is the address *it* saw. The first address that is not a trusted proxy is the
client. Entries further left were written by the client and are never read.

- With no trusted proxies (the default) the header is ignored: the peer is the client.
- If every entry is a trusted proxy, the left-most one is the client (the furthest known).
- An entry that is not an address stops the walk at the last address read (the trusted
  proxy that handed the unreadable entry over), never at a client-chosen value.

uvicorn must not rewrite the peer from headers itself: run it with ``--no-proxy-headers``
(``deploy/compose.yaml`` and ``scripts/run_embedded.py`` do), otherwise the peer this
module starts from is already what the client wrote.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> tuple[IPNetwork, ...]:
    """Addresses or CIDRs; raises ValueError naming a bad entry."""
    networks = []
    for entry in entries:
        try:
            networks.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError as exc:
            raise ValueError(f"{entry!r} is not an address or network") from exc
    return tuple(networks)


@lru_cache(maxsize=8)
def _trusted(entries: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return parse_networks(entries)


def trusted_proxies() -> tuple[IPNetwork, ...]:
    return _trusted(tuple(settings.BATON_TRUSTED_PROXIES))


def parse_address(text: str) -> IPAddress | None:
    """An address as a peer or an X-Forwarded-For entry gives it, or None.

    Accepts ``1.2.3.4``, ``1.2.3.4:port``, ``2001:db8::1``, ``[2001:db8::1]:port``; an
    IPv4-mapped IPv6 address (a dual-stack socket's view of an IPv4 peer) becomes IPv4.
    """
    text = text.strip()
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        if text.startswith("["):
            host, bracket, _ = text[1:].partition("]")
            text = host if bracket else ""
        elif text.count(":") == 1:
            text = text.partition(":")[0]
        else:
            return None
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def resolve(peer: str | None, forwarded_for: Sequence[str] = ()) -> str | None:
    """The client's address from the direct peer and the X-Forwarded-For header values (in
    the order received; several headers count as one list), or None when there is no peer."""
    if not peer:
        return None
    current = parse_address(peer)
    if current is None:
        return None
    networks = trusted_proxies()
    if not networks or not forwarded_for:
        return str(current)
    hops = [hop for value in forwarded_for for hop in value.split(",")]
    while any(current in network for network in networks) and hops:
        previous = parse_address(hops.pop())
        if previous is None:
            break
        current = previous
    return str(current)


def from_scope(scope: dict[str, Any]) -> str | None:
    """The client's address for an ASGI HTTP scope (the relay, /metrics)."""
    client = scope.get("client")
    peer = client[0] if client else None
    if not settings.BATON_TRUSTED_PROXIES:
        return resolve(peer)
    forwarded = [
        value.decode("latin-1") for name, value in scope["headers"] if name == b"x-forwarded-for"
    ]
    return resolve(peer, forwarded)


def from_request(request: HttpRequest) -> str | None:
    """The client's address for a Django request (audit log, sign-in rate limits).

    Django joins repeated headers with commas, which is the same list."""
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR")
    return resolve(request.META.get("REMOTE_ADDR"), [forwarded] if forwarded else [])
