"""Server-side request forgery guard for team-supplied upstream base URLs.

A team can point a credential at its own base URL (a self-hosted vLLM, an
Azure resource, a regional endpoint). Without a guard that is an SSRF hole:
Baton's servers would fetch ``http://169.254.169.254/`` (cloud credentials),
``http://127.0.0.1:6379`` (Redis) or a private admin panel on a team's behalf.
Peers' fixes were bypassed with ``0.0.0.0``, odd IPv4 spellings and DNS
rebinding, so the guard works in layers:

1. **Save time** -- :func:`validate_base_url` checks syntax, the literal IP in
   any spelling (:func:`parse_host_ip`) and, for a hostname, every address it
   resolves to right now. This gives the user a clear form error.
2. **Send time** -- :func:`check_url_host` rechecks a literal-IP host without
   DNS (aiohttp does not call the resolver for literal IPs).
3. **Connect time** -- :func:`guarded_connector` builds an aiohttp
   ``TCPConnector`` with a :class:`GuardedResolver` (every resolved address is
   checked, which defeats DNS rebinding: a name that resolved to a public
   address when saved and to ``127.0.0.1`` now is refused now) *and* a socket
   factory that checks the exact address each socket is about to connect to.
   The socket factory is the backstop: it also covers literal IPs, redirects
   (``Location: http://127.0.0.1/``) and anything a future aiohttp version
   resolves differently.

How aiohttp surfaces a refusal (aiohttp 3.12+, checked against 3.14): the
connector wraps any ``OSError`` raised by the resolver in
``aiohttp.ClientConnectorDNSError`` and any ``OSError`` raised while opening
the socket in ``aiohttp.ClientConnectorError`` (``ClientConnectorDNSError`` is
a subclass). Exceptions that are not ``OSError`` would escape unwrapped and
look like programming errors, so connect-time refusals raise
:class:`UnsafeUpstreamAddress`, which is both an ``OSError`` and an
:class:`UnsafeUpstreamURL`. The send path sees an ordinary connection error;
:func:`unsafe_address_cause` tells it apart from a network failure (it is a
configuration problem of the credential, not a reason to cool the target down).

The connector only guards the addresses it connects to: with an HTTP proxy
(``trust_env=True`` or ``proxy=``) the proxy resolves the target, so the
relay's session must not use one.
"""

from __future__ import annotations

import errno
import ipaddress
import re
import socket
from dataclasses import dataclass
from enum import Enum
from typing import Any

import aiohttp
from aiohappyeyeballs import AddrInfoType, SocketFactoryType
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

__all__ = [
    "ALLOW_LOOPBACK_SETTING",
    "ALLOW_PRIVATE_SETTING",
    "MAX_URL_LENGTH",
    "AddressPolicy",
    "GuardedResolver",
    "IPAddress",
    "UnsafeUpstreamAddress",
    "UnsafeUpstreamURL",
    "check_address",
    "check_url_host",
    "guarded_connector",
    "is_allowed_address",
    "parse_host_ip",
    "unsafe_address_cause",
    "validate_base_url",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# Named in messages so whoever reads the error knows which switch exists.
ALLOW_PRIVATE_SETTING = "BATON_ALLOW_PRIVATE_UPSTREAMS"
ALLOW_LOOPBACK_SETTING = "BATON_ALLOW_LOOPBACK_UPSTREAMS"
MAX_URL_LENGTH = 2048


class UnsafeUpstreamURL(ValueError):
    """A base URL is malformed or points somewhere Baton must not connect to.

    The message says what is wrong in plain words and is safe to show the team.
    """


class UnsafeUpstreamAddress(OSError, UnsafeUpstreamURL):
    """A connection was refused at connect time because of its address.

    An ``OSError`` so aiohttp wraps it in ``ClientConnectorError`` (or
    ``ClientConnectorDNSError`` when the resolver refused) like any other
    connection failure; the original is the wrapper's ``os_error``.
    """

    def __init__(self, message: str) -> None:
        # EACCES: the operation is refused by policy, not by the network.
        super().__init__(errno.EACCES, message)

    def __str__(self) -> str:
        return str(self.strerror)


@dataclass(frozen=True)
class AddressPolicy:
    """Which non-public destinations the operator allows.

    ``allow_private`` opens every private-use range (and loopback, link-local
    and reserved ones, including the cloud metadata address): meant for
    self-hosted deployments whose models run on the local network.
    ``allow_loopback`` opens only 127.0.0.0/8 and ::1 (the embedded mode's
    built-in fake upstream). The unspecified address, multicast and broadcast
    are never allowed: no real upstream lives there, and ``0.0.0.0`` reaches
    the local host on Linux.
    """

    allow_private: bool = False
    allow_loopback: bool = False


class _Kind(Enum):
    UNSPECIFIED = "the unspecified address"
    THIS_NETWORK = "a 'this network' address (0.0.0.0/8)"
    BROADCAST = "the broadcast address"
    MULTICAST = "a multicast address"
    LOOPBACK = "a loopback address"
    PRIVATE = "a private address"
    SHARED = "a carrier-grade NAT (shared, 100.64.0.0/10) address"
    LINK_LOCAL = "a link-local address"
    SITE_LOCAL = "a site-local address"
    RESERVED = "a reserved or special-purpose address"


_NEVER = frozenset({_Kind.UNSPECIFIED, _Kind.THIS_NETWORK, _Kind.BROADCAST, _Kind.MULTICAST})

_V4 = ipaddress.IPv4Network
_V6 = ipaddress.IPv6Network

# Explicit tables rather than ``ip.is_private``/``is_global``: those changed
# between Python patch releases (gh-113171), and a security check must not
# move under us. First match wins, so the broadcast /32 precedes 240.0.0.0/4.
_IPV4_RANGES: tuple[tuple[ipaddress.IPv4Network, _Kind], ...] = (
    (_V4("0.0.0.0/32"), _Kind.UNSPECIFIED),
    (_V4("0.0.0.0/8"), _Kind.THIS_NETWORK),
    (_V4("10.0.0.0/8"), _Kind.PRIVATE),
    (_V4("100.64.0.0/10"), _Kind.SHARED),
    (_V4("127.0.0.0/8"), _Kind.LOOPBACK),
    (_V4("169.254.0.0/16"), _Kind.LINK_LOCAL),
    (_V4("172.16.0.0/12"), _Kind.PRIVATE),
    (_V4("192.0.0.0/24"), _Kind.RESERVED),  # IETF protocol assignments
    (_V4("192.0.2.0/24"), _Kind.RESERVED),  # documentation (TEST-NET-1)
    (_V4("192.88.99.0/24"), _Kind.RESERVED),  # deprecated 6to4 relay anycast
    (_V4("192.168.0.0/16"), _Kind.PRIVATE),
    (_V4("198.18.0.0/15"), _Kind.RESERVED),  # benchmarking
    (_V4("198.51.100.0/24"), _Kind.RESERVED),  # documentation (TEST-NET-2)
    (_V4("203.0.113.0/24"), _Kind.RESERVED),  # documentation (TEST-NET-3)
    (_V4("224.0.0.0/4"), _Kind.MULTICAST),
    (_V4("255.255.255.255/32"), _Kind.BROADCAST),
    (_V4("240.0.0.0/4"), _Kind.RESERVED),
)

# IPv6 forms that carry an IPv4 address the kernel or a translator will
# actually reach; the embedded address decides.
_IPV6_EMBEDDING: tuple[ipaddress.IPv6Network, ...] = (
    _V6("::ffff:0:0/96"),  # IPv4-mapped
    _V6("::ffff:0:0:0/96"),  # IPv4-translated (SIIT)
    _V6("64:ff9b::/96"),  # NAT64 well-known prefix
    _V6("::/96"),  # IPv4-compatible (deprecated); :: and ::1 are handled first
)
_IPV6_6TO4 = _V6("2002::/16")

_IPV6_RANGES: tuple[tuple[ipaddress.IPv6Network, _Kind], ...] = (
    (_V6("ff00::/8"), _Kind.MULTICAST),
    (_V6("fc00::/7"), _Kind.PRIVATE),  # unique local
    (_V6("fe80::/10"), _Kind.LINK_LOCAL),
    (_V6("fec0::/10"), _Kind.SITE_LOCAL),
    (_V6("64:ff9b:1::/48"), _Kind.PRIVATE),  # local-use NAT64
    (_V6("100::/64"), _Kind.RESERVED),  # discard-only
    (_V6("2001::/23"), _Kind.RESERVED),  # IETF protocol assignments, incl. Teredo
    (_V6("2001:db8::/32"), _Kind.RESERVED),  # documentation
    (_V6("3fff::/20"), _Kind.RESERVED),  # documentation (RFC 9637)
)
# Anything outside global unicast is not a place an upstream can live.
_IPV6_GLOBAL_UNICAST = _V6("2000::/3")

_CLOUD_METADATA = frozenset(
    {
        ipaddress.ip_address("169.254.169.254"),  # AWS, GCP, Azure, OpenStack, ...
        ipaddress.ip_address("169.254.170.2"),  # AWS ECS task metadata
        ipaddress.ip_address("fd00:ec2::254"),  # AWS IMDS over IPv6
    }
)


def _classify_v4(ip: ipaddress.IPv4Address) -> _Kind | None:
    for network, kind in _IPV4_RANGES:
        if ip in network:
            return kind
    return None


def _classify(ip: IPAddress) -> tuple[_Kind | None, ipaddress.IPv4Address | None]:
    """The kind of a non-public address (None if public) and any embedded IPv4."""
    if isinstance(ip, ipaddress.IPv4Address):
        return _classify_v4(ip), None
    if ip.scope_id:
        # Only link-local and multicast addresses carry a zone; drop it so
        # the range lookups compare plain addresses.
        ip = ipaddress.IPv6Address(str(ip).split("%", 1)[0])
    if ip == ipaddress.IPv6Address("::"):
        return _Kind.UNSPECIFIED, None
    if ip == ipaddress.IPv6Address("::1"):
        return _Kind.LOOPBACK, None
    for network in _IPV6_EMBEDDING:
        if ip in network:
            embedded = ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
            return _classify_v4(embedded), embedded
    if ip in _IPV6_6TO4:
        embedded = ipaddress.IPv4Address((int(ip) >> 80) & 0xFFFFFFFF)
        return _classify_v4(embedded), embedded
    for network6, kind in _IPV6_RANGES:
        if ip in network6:
            return kind, None
    if ip not in _IPV6_GLOBAL_UNICAST:
        return _Kind.RESERVED, None
    return None, None


def _refusal(ip: IPAddress, policy: AddressPolicy) -> str | None:
    """Why ``ip`` is refused under ``policy`` (a phrase), or None if allowed."""
    kind, embedded = _classify(ip)
    if kind is None:
        return None
    if kind not in _NEVER:
        if policy.allow_private:
            return None
        if kind is _Kind.LOOPBACK and policy.allow_loopback:
            return None
    what = kind.value
    if embedded is not None:
        what += f" (it embeds the IPv4 address {embedded})"
    if ip in _CLOUD_METADATA or embedded in _CLOUD_METADATA:
        what += ", the cloud metadata service"
    if kind in _NEVER:
        return f"{what}, which is never a valid upstream"
    if kind is _Kind.LOOPBACK:
        return (
            f"{what}; loopback upstreams are disabled by the operator "
            f"({ALLOW_LOOPBACK_SETTING} or {ALLOW_PRIVATE_SETTING})"
        )
    return f"{what}; private upstreams are disabled by the operator ({ALLOW_PRIVATE_SETTING})"


def is_allowed_address(ip: IPAddress, policy: AddressPolicy) -> bool:
    """Whether Baton may connect to ``ip`` under ``policy``."""
    return _refusal(ip, policy) is None


def check_address(ip: IPAddress, policy: AddressPolicy, *, subject: str) -> None:
    """Raise :class:`UnsafeUpstreamURL` if ``ip`` is refused.

    ``subject`` starts the message, e.g. ``"base URL host 127.0.0.1"``.
    """
    reason = _refusal(ip, policy)
    if reason is not None:
        raise UnsafeUpstreamURL(f"{subject} is {reason}")


# --- Parsing hosts ------------------------------------------------------------

# inet_aton part syntax: 0x-prefixed hex (digits optional, as in BSD and the
# WHATWG URL standard), a leading 0 for octal, otherwise decimal. ASCII only:
# ``str.isdigit`` would accept other scripts' digits.
_HEX_PART = re.compile(r"0[xX]([0-9A-Fa-f]*)")
_OCT_PART = re.compile(r"0([0-7]*)")
_DEC_PART = re.compile(r"[1-9][0-9]*")
# A label that only a number parser could want: all digits, or 0x-hex.
_NUMERIC_LABEL = re.compile(r"[0-9]+|0[xX][0-9A-Fa-f]*")
_HOST_LABEL = re.compile(r"(?!-)[a-z0-9_-]{1,63}(?<!-)")


def _parse_ipv4_part(part: str) -> int | None:
    if match := _HEX_PART.fullmatch(part):
        digits, base = match.group(1) or "0", 16
    elif match := _OCT_PART.fullmatch(part):
        digits, base = match.group(1) or "0", 8
    elif _DEC_PART.fullmatch(part):
        digits, base = part, 10
    else:
        return None
    # Leading zeros are meaningless. 2**32 - 1 needs at most 11 significant
    # digits (in octal), so anything longer is out of range; bounding the
    # length also keeps int() cheap on hostile input.
    digits = digits.lstrip("0") or "0"
    if len(digits) > 11:
        return None
    return int(digits, base)


def _parse_ipv4(host: str) -> ipaddress.IPv4Address | None:
    """inet_aton semantics, explicitly: 1-4 parts, each hex, octal or decimal.

    ``a`` is the whole 32 bits, ``a.b`` is 8+24 bits, ``a.b.c`` is 8+8+16 bits.
    One trailing dot is ignored (the WHATWG URL standard and browsers read
    ``127.0.0.1.`` as 127.0.0.1; glibc refuses it, so reading it as an address
    can only make us stricter).
    """
    if host.endswith(".") and not host.endswith(".."):
        host = host[:-1]
    parts = host.split(".")
    if not 1 <= len(parts) <= 4:
        return None
    values: list[int] = []
    for part in parts:
        value = _parse_ipv4_part(part)
        if value is None:
            return None
        values.append(value)
    *leading, last = values
    if any(value > 0xFF for value in leading):
        return None
    if last >= 1 << (8 * (5 - len(values))):
        return None
    number = last
    for index, value in enumerate(leading):
        number |= value << (8 * (3 - index))
    return ipaddress.IPv4Address(number)


def parse_host_ip(host: str) -> IPAddress | None:
    """The IP address a URL host denotes in any spelling, or None for a hostname.

    Recognises ``[::1]``, IPv6 with a zone id (``fe80::1%eth0`` or the
    URL-encoded ``%25eth0``; the zone is dropped), and every IPv4 form that
    ``inet_aton`` accepts: ``2130706433``, ``0x7f000001``, ``0177.0.0.1``,
    ``127.1``, ``0x7f.1`` and mixtures, with an optional single trailing dot.
    Implemented here rather than through ``socket.inet_aton`` so the answer
    does not depend on the platform's libc.
    """
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        if ":" not in host:
            return None
    if ":" in host:
        try:
            return ipaddress.IPv6Address(host.split("%", 1)[0])
        except ValueError:
            return None
    if not host.isascii():
        return None
    return _parse_ipv4(host)


def _looks_numeric(host: str) -> bool:
    """Whether the last label is a number (WHATWG "ends in a number").

    Such a host can only be meant as an IPv4 address; when it does not parse
    as one (``08.0.0.1``, ``1.2.3.4.5``, ``4294967296``) some resolvers still
    read it as a number, so it is refused as malformed rather than looked up.
    """
    labels = host.split(".")
    if len(labels) > 1 and labels[-1] == "":
        labels.pop()
    return bool(_NUMERIC_LABEL.fullmatch(labels[-1]))


def _is_localhost_name(host: str) -> bool:
    # RFC 6761: localhost and anything under it resolve to loopback, whatever
    # DNS says; refusing by name also covers resolve=False.
    name = host.rstrip(".")
    return name == "localhost" or name.endswith(".localhost")


def _check_host(host: str, policy: AddressPolicy, *, subject: str) -> IPAddress | None:
    """Check a URL host without DNS; returns its IP when it is a literal one."""
    ip = parse_host_ip(host)
    if ip is not None:
        shown = f"[{host}]" if ":" in host else host
        check_address(ip, policy, subject=f"{subject} {shown}")
        return ip
    if _looks_numeric(host):
        raise UnsafeUpstreamURL(
            f"{subject} {host} looks like a numeric IPv4 address but is not a valid one"
        )
    name = host[:-1] if host.endswith(".") else host
    if len(name) > 253 or not all(_HOST_LABEL.fullmatch(label) for label in name.split(".")):
        raise UnsafeUpstreamURL(f"{subject} {host!r} is not a valid host name")
    if _is_localhost_name(host):
        reason = _refusal(ipaddress.IPv4Address("127.0.0.1"), policy)
        if reason is not None:
            raise UnsafeUpstreamURL(f"{subject} {host} names {reason}")
    return None


def _authority(url: str) -> str:
    """The raw authority (``user@host:port``) of ``scheme://authority/...``."""
    _, sep, rest = url.partition("//")
    if not sep:
        return ""
    return re.split(r"[/?#]", rest, maxsplit=1)[0]


def _parse(url: str) -> URL:
    """Parse with yarl, the parser aiohttp uses for the actual request.

    Checking a host parsed by a different library than the one that connects
    invites parser-differential bypasses (``http://a\\@127.0.0.1/``).
    """
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        # yarl silently drops tabs and newlines (as browsers do), so
        # ``127.0.0.1\\tfoo`` would become a different host than the user typed.
        raise UnsafeUpstreamURL("base URL must not contain spaces or control characters")
    if "\\" in url:
        raise UnsafeUpstreamURL("base URL must not contain a backslash")
    if "@" in _authority(url):
        # Checked before parsing so a password never reaches an error message.
        raise UnsafeUpstreamURL(
            "base URL must not contain a user name or password (user:pass@); "
            "put the API key in the credential instead"
        )
    try:
        return URL(url)
    except (ValueError, TypeError) as exc:
        raise UnsafeUpstreamURL(f"base URL is malformed: {exc}") from None


def _resolved_addresses(host: str, port: int) -> list[IPAddress]:
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise UnsafeUpstreamURL(f"base URL host {host} does not resolve") from None
    addresses: list[IPAddress] = []
    for *_, sockaddr in infos:
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnsafeUpstreamURL(f"base URL host {host} does not resolve")
    return addresses


def validate_base_url(url: str, policy: AddressPolicy, *, resolve: bool = True) -> str:
    """Check a team-supplied upstream base URL and return it normalised.

    Requires http or https, a host, no user name or password, no fragment,
    at most :data:`MAX_URL_LENGTH` characters. A literal IP (any spelling) must
    be allowed by ``policy``; a hostname must resolve (when ``resolve``) and
    *every* address it resolves to must be allowed, since the connector may
    pick any of them. The result has a lower-cased scheme and host, an
    IDNA-encoded host and no trailing slash on the path.

    Passing this check is not enough on its own: DNS can change afterwards,
    so the relay connects through :func:`guarded_connector`.
    """
    url = url.strip()
    if not url:
        raise UnsafeUpstreamURL("base URL is empty")
    if len(url) > MAX_URL_LENGTH:
        raise UnsafeUpstreamURL(f"base URL is longer than {MAX_URL_LENGTH} characters")
    parsed = _parse(url)
    if parsed.scheme not in ("http", "https"):
        raise UnsafeUpstreamURL("base URL must start with http:// or https://")
    host = parsed.raw_host
    if not host:
        raise UnsafeUpstreamURL("base URL has no host (expected http(s)://host/...)")
    if parsed.raw_user is not None or parsed.raw_password is not None:
        raise UnsafeUpstreamURL("base URL must not contain a user name or password (user:pass@)")
    if parsed.raw_fragment or "#" in url:
        raise UnsafeUpstreamURL("base URL must not contain a fragment (#...)")

    ip = _check_host(host, policy, subject="base URL host")
    if ip is None and resolve:
        for address in _resolved_addresses(host, parsed.port or 0):
            check_address(
                address, policy, subject=f"base URL host {host} resolves to {address}, which"
            )

    # The host is non-empty, so stripping slashes never eats into "scheme://".
    base, sep, query = str(parsed).partition("?")
    return base.rstrip("/") + sep + query


def check_url_host(url: str | URL, policy: AddressPolicy) -> None:
    """Refuse a URL whose host is a disallowed literal IP, without DNS.

    For the send path: aiohttp connects to literal-IP hosts without calling
    the resolver, so :class:`GuardedResolver` never sees them. (The socket
    factory of :func:`guarded_connector` catches them too; this check fails
    earlier with a clearer message.) Hostnames pass: they are checked when
    the connector resolves them.
    """
    parsed = url if isinstance(url, URL) else _parse(url)
    host = parsed.raw_host
    if not host:
        raise UnsafeUpstreamURL("upstream URL has no host")
    _check_host(host, policy, subject="upstream host")


# --- Connect time -------------------------------------------------------------


class GuardedResolver(AbstractResolver):
    """An aiohttp resolver that refuses disallowed addresses.

    Wraps another resolver (aiohttp's default, a thread-pool ``getaddrinfo``,
    unless one is given) and checks every address it returns; if any is
    refused the whole lookup fails with :class:`UnsafeUpstreamAddress`, which
    aiohttp reports as ``ClientConnectorDNSError``. Refusing the lookup rather
    than filtering addresses keeps one rule for save time and connect time.

    Only successful lookups enter the connector's DNS cache, so a cached
    address has passed the check. The wrapped resolver is closed with this one.
    Must be created inside a running event loop (as aiohttp's resolvers are).
    """

    def __init__(self, policy: AddressPolicy, resolver: AbstractResolver | None = None) -> None:
        self.policy = policy
        self._resolver = resolver if resolver is not None else DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._resolver.resolve(host, port, family)
        for result in results:
            address = ipaddress.ip_address(str(result["host"]).split("%", 1)[0])
            reason = _refusal(address, self.policy)
            if reason is not None:
                raise UnsafeUpstreamAddress(
                    f"upstream host {host} resolved to {address} at connect time, {reason}"
                )
        return results

    async def close(self) -> None:
        await self._resolver.close()


def _guarded_socket_factory(
    policy: AddressPolicy, inner: SocketFactoryType | None
) -> SocketFactoryType:
    def factory(addr_info: AddrInfoType) -> socket.socket:
        family, type_, proto, _, sockaddr = addr_info
        address = ipaddress.ip_address(str(sockaddr[0]).split("%", 1)[0])
        reason = _refusal(address, policy)
        if reason is not None:
            raise UnsafeUpstreamAddress(f"refusing to connect to {address}: it is {reason}")
        if inner is not None:
            return inner(addr_info)
        return socket.socket(family=family, type=type_, proto=proto)

    return factory


def guarded_connector(
    policy: AddressPolicy,
    *,
    resolver: AbstractResolver | None = None,
    socket_factory: SocketFactoryType | None = None,
    **connector_kwargs: Any,
) -> aiohttp.TCPConnector:
    """An aiohttp ``TCPConnector`` that refuses disallowed destinations.

    ``resolver`` is the resolver to wrap (aiohttp's default if omitted) and
    ``socket_factory`` an optional factory to delegate to once an address has
    passed; other keyword arguments go to ``TCPConnector`` unchanged. Call it
    inside a running event loop.

    Refusals surface as ``aiohttp.ClientConnectorError`` (``...DNSError`` when
    the resolver refused) whose ``os_error`` is an
    :class:`UnsafeUpstreamAddress`; see :func:`unsafe_address_cause`.
    """
    return aiohttp.TCPConnector(
        resolver=GuardedResolver(policy, resolver),
        socket_factory=_guarded_socket_factory(policy, socket_factory),
        **connector_kwargs,
    )


def unsafe_address_cause(exc: BaseException) -> UnsafeUpstreamAddress | None:
    """The :class:`UnsafeUpstreamAddress` behind an aiohttp connection error, if any."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, UnsafeUpstreamAddress):
            return current
        seen.add(id(current))
        if isinstance(current, aiohttp.ClientConnectorError):
            current = current.os_error
        else:
            current = current.__cause__ or current.__context__
    return None
