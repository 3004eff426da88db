"""The SSRF guard: address policy, host spellings, base URL checks, connect time."""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.abc import AbstractResolver, ResolveResult

from relay.netguard import (
    AddressPolicy,
    GuardedResolver,
    UnsafeUpstreamAddress,
    UnsafeUpstreamURL,
    check_url_host,
    guarded_connector,
    is_allowed_address,
    parse_host_ip,
    unsafe_address_cause,
    validate_base_url,
)
from scripts.services import free_port

STRICT = AddressPolicy()
LOOPBACK_OK = AddressPolicy(allow_loopback=True)
PRIVATE_OK = AddressPolicy(allow_private=True)
# "127" in fullwidth digits: IDNA maps it to ASCII, so yarl reads 127.0.0.1.
FULLWIDTH_127 = "\uff11\uff12\uff17"

GetAddrInfo = Callable[..., list[tuple[Any, ...]]]


def fake_getaddrinfo(table: dict[str, list[str]]) -> GetAddrInfo:
    """A ``socket.getaddrinfo`` that answers from ``table`` and fails otherwise."""

    def getaddrinfo(host: str, port: Any, *args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        if host not in table:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        infos: list[tuple[Any, ...]] = []
        for address in table[host]:
            if ":" in address:
                sockaddr: tuple[Any, ...] = (address, int(port or 0), 0, 0)
                family = socket.AF_INET6
            else:
                sockaddr = (address, int(port or 0))
                family = socket.AF_INET
            infos.append((family, socket.SOCK_STREAM, socket.IPPROTO_TCP, "", sockaddr))
        return infos

    return getaddrinfo


@pytest.fixture
def no_dns(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> list[tuple[Any, ...]]:
        raise AssertionError("DNS must not be consulted here")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)


# --- Spellings ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("host", "expected"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("2130706433", "127.0.0.1"),
        ("0x7f000001", "127.0.0.1"),
        ("0X7F000001", "127.0.0.1"),
        ("0177.0.0.1", "127.0.0.1"),
        ("0000000177.0.0.1", "127.0.0.1"),
        ("127.1", "127.0.0.1"),
        ("0x7f.1", "127.0.0.1"),
        ("0x7f.0.0x1", "127.0.0.1"),
        ("10.0x10.1", "10.16.0.1"),
        ("127.0.0.1.", "127.0.0.1"),
        ("0", "0.0.0.0"),  # noqa: S104
        ("4294967295", "255.255.255.255"),
        ("[::1]", "::1"),
        ("::1", "::1"),
        ("[::ffff:127.0.0.1]", "::ffff:7f00:1"),
        ("fe80::1%eth0", "fe80::1"),
        ("fe80::1%25eth0", "fe80::1"),
    ],
)
def test_parse_host_ip_recognises_every_spelling(host: str, expected: str) -> None:
    assert parse_host_ip(host) == ipaddress.ip_address(expected)


@pytest.mark.parametrize(
    "host",
    [
        "api.openai.com",
        "example.com.",
        "0x7f.example.com",
        "4294967296",  # one past 255.255.255.255
        "256.0.0.1",
        "1.2.3.4.5",
        "127..1",
        "127.0.0.1..",
        "08.0.0.1",  # 8 is not an octal digit
        FULLWIDTH_127 + ".0.0.1",  # non-ASCII digits: yarl maps them, the parser does not
        "[127.0.0.1]",
        "",
    ],
)
def test_parse_host_ip_returns_none_for_names_and_non_addresses(host: str) -> None:
    assert parse_host_ip(host) is None


# --- Address policy -----------------------------------------------------------


@pytest.mark.parametrize(
    "address",
    ["8.8.8.8", "104.18.6.192", "2606:4700::6812:6c0", "::ffff:8.8.8.8", "2002:808:808::1"],
)
def test_public_addresses_are_allowed(address: str) -> None:
    assert is_allowed_address(ipaddress.ip_address(address), STRICT)


@pytest.mark.parametrize(
    "address",
    [
        "192.168.1.1",
        "172.31.255.255",
        "198.18.0.1",
        "240.0.0.1",
        "192.0.2.1",
        "fc00::1",
        "fd12:3456::1",
        "fec0::1",
        "::ffff:10.0.0.1",
        "64:ff9b::7f00:1",
        "2001:db8::1",
        "100::1",
    ],
)
def test_non_public_addresses_are_refused_by_default(address: str) -> None:
    assert not is_allowed_address(ipaddress.ip_address(address), STRICT)


def test_allow_loopback_opens_only_loopback() -> None:
    assert is_allowed_address(ipaddress.ip_address("127.0.0.1"), LOOPBACK_OK)
    assert is_allowed_address(ipaddress.ip_address("::1"), LOOPBACK_OK)
    assert is_allowed_address(ipaddress.ip_address("::ffff:127.0.0.1"), LOOPBACK_OK)
    assert not is_allowed_address(ipaddress.ip_address("10.0.0.1"), LOOPBACK_OK)
    assert not is_allowed_address(ipaddress.ip_address("169.254.169.254"), LOOPBACK_OK)


@pytest.mark.parametrize(
    "address", ["10.0.0.1", "127.0.0.1", "169.254.169.254", "fd00::1", "100.64.0.1"]
)
def test_allow_private_opens_private_ranges(address: str) -> None:
    assert is_allowed_address(ipaddress.ip_address(address), PRIVATE_OK)


@pytest.mark.parametrize(
    "address",
    ["0.0.0.0", "0.1.2.3", "::", "224.0.0.1", "ff02::1", "255.255.255.255"],  # noqa: S104
)
def test_some_addresses_are_never_allowed(address: str) -> None:
    assert not is_allowed_address(ipaddress.ip_address(address), PRIVATE_OK)


# --- validate_base_url --------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://127.0.0.1", "127.0.0.1 is a loopback address; loopback upstreams are disabled"),
        ("http://10.0.0.1", "10.0.0.1 is a private address; private upstreams are disabled"),
        ("http://[::1]", "\\[::1\\] is a loopback address"),
        (
            "http://[::ffff:127.0.0.1]",
            "loopback address \\(it embeds the IPv4 address 127.0.0.1\\)",
        ),
        ("http://0.0.0.0", "0.0.0.0 is the unspecified address, which is never a valid upstream"),
        ("http://2130706433", "2130706433 is a loopback address"),
        ("http://0x7f.1", "0x7f.1 is a loopback address"),
        ("http://0177.0.0.1", "0177.0.0.1 is a loopback address"),
        ("http://169.254.169.254", "link-local address, the cloud metadata service"),
        ("http://[fe80::1]", "\\[fe80::1\\] is a link-local address"),
        ("http://100.64.0.1", "carrier-grade NAT"),
        ("http://localhost:8000", "localhost names a loopback address"),
        ("http://api.localhost", "api.localhost names a loopback address"),
        ("http://" + FULLWIDTH_127 + ".0.0.1", "127.0.0.1 is a loopback address"),
        ("http://127.0.0.1./v1", "is a loopback address"),
        ("http://08.0.0.1", "looks like a numeric IPv4 address but is not a valid one"),
    ],
)
def test_unsafe_hosts_are_refused_without_dns(url: str, message: str, no_dns: None) -> None:
    with pytest.raises(UnsafeUpstreamURL, match=message):
        validate_base_url(url, STRICT)


def test_refusal_names_the_operator_setting() -> None:
    with pytest.raises(UnsafeUpstreamURL, match="BATON_ALLOW_PRIVATE_UPSTREAMS"):
        validate_base_url("http://10.0.0.1", STRICT, resolve=False)
    with pytest.raises(UnsafeUpstreamURL, match="BATON_ALLOW_LOOPBACK_UPSTREAMS"):
        validate_base_url("http://127.0.0.1", STRICT, resolve=False)


def test_hostname_resolving_to_a_private_address_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo({"evil.example": ["10.1.2.3"]}))

    with pytest.raises(
        UnsafeUpstreamURL,
        match=re.escape("evil.example resolves to 10.1.2.3, which is a private address"),
    ):
        validate_base_url("https://evil.example/v1", STRICT)


def test_every_resolved_address_must_be_safe(monkeypatch: pytest.MonkeyPatch) -> None:
    # The connector may pick any of them, so one bad answer spoils the name.
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        fake_getaddrinfo({"mixed.example": ["104.18.6.192", "::1"]}),
    )

    with pytest.raises(UnsafeUpstreamURL, match="resolves to ::1, which is a loopback address"):
        validate_base_url("https://mixed.example", STRICT)


def test_unresolvable_host_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo({}))

    with pytest.raises(UnsafeUpstreamURL, match=re.escape("host nowhere.example does not resolve")):
        validate_base_url("https://nowhere.example", STRICT)


def test_public_upstream_is_accepted_and_normalised(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(
        socket, "getaddrinfo", fake_getaddrinfo({"api.openai.com": ["104.18.6.192"]})
    )

    assert validate_base_url("https://api.openai.com/v1", STRICT) == "https://api.openai.com/v1"
    assert validate_base_url("HTTPS://API.OpenAI.com/v1/", STRICT) == "https://api.openai.com/v1"


def test_public_upstream_is_accepted_without_resolving(no_dns: None) -> None:
    assert validate_base_url("https://api.openai.com/v1/", STRICT, resolve=False) == (
        "https://api.openai.com/v1"
    )
    assert validate_base_url("http://host.example:8080/", STRICT, resolve=False) == (
        "http://host.example:8080"
    )
    assert validate_base_url(
        "https://res.example/openai/?api-version=2024-10-21", STRICT, resolve=False
    ) == ("https://res.example/openai?api-version=2024-10-21")


def test_loopback_is_accepted_when_allowed(no_dns: None) -> None:
    assert validate_base_url("http://127.0.0.1:8001/", LOOPBACK_OK) == "http://127.0.0.1:8001"
    assert validate_base_url("http://[::1]:8001", LOOPBACK_OK) == "http://[::1]:8001"
    assert validate_base_url("http://localhost:8001/v1/", LOOPBACK_OK, resolve=False) == (
        "http://localhost:8001/v1"
    )


def test_private_is_accepted_when_allowed_but_unspecified_never(no_dns: None) -> None:
    assert validate_base_url("http://10.0.0.5:11434", PRIVATE_OK) == "http://10.0.0.5:11434"
    with pytest.raises(UnsafeUpstreamURL, match="never a valid upstream"):
        validate_base_url("http://0.0.0.0:11434", PRIVATE_OK)


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("ftp://x", "must start with http:// or https://"),
        ("http://", "has no host"),
        ("http:///v1", "has no host"),
        ("http://user:pw@host", "must not contain a user name or password"),
        ("http://user@host", "must not contain a user name or password"),
        ("not a url", "must not contain spaces or control characters"),
        ("api.openai.com/v1", "must start with http:// or https://"),
        ("", "base URL is empty"),
        ("http://host.example/v1#frag", "must not contain a fragment"),
        ("http://host.example:99999", "malformed"),
        ("http://[::1", "malformed"),
        ("http://127.0.0.1\tfoo/", "spaces or control characters"),
        ("http://evil.example\\@127.0.0.1/", "backslash"),
        ("http://bad_host!.example", "is not a valid host name"),
        ("http://-dash.example", "is not a valid host name"),
        ("https://h.example/" + "a" * 2048, "longer than 2048 characters"),
    ],
)
def test_malformed_urls_are_refused_clearly(url: str, message: str, no_dns: None) -> None:
    with pytest.raises(UnsafeUpstreamURL, match=message):
        validate_base_url(url, STRICT)


def test_password_never_appears_in_the_message() -> None:
    with pytest.raises(UnsafeUpstreamURL) as info:
        validate_base_url("http://user:hunter2@host.example:notaport/", STRICT)
    assert "hunter2" not in str(info.value)


# --- check_url_host (send path, no DNS) ---------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/v1/chat/completions",
        "http://2130706433/v1",
        "http://0x7f.1/v1",
        "http://[::ffff:169.254.169.254]/",
        "http://localhost/",
    ],
)
def test_check_url_host_refuses_literal_unsafe_hosts(url: str, no_dns: None) -> None:
    with pytest.raises(UnsafeUpstreamURL):
        check_url_host(url, STRICT)


def test_check_url_host_leaves_names_to_the_resolver(no_dns: None) -> None:
    check_url_host("https://rebind.test/v1/chat/completions", STRICT)
    check_url_host("https://104.18.6.192/v1", STRICT)
    check_url_host("http://127.0.0.1:8001/v1", LOOPBACK_OK)


# --- Connect time -------------------------------------------------------------


class StaticResolver(AbstractResolver):
    """Resolves names from a table, like a DNS server the attacker controls."""

    def __init__(self, table: dict[str, str]) -> None:
        self.table = table
        self.calls = 0

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls += 1
        if host not in self.table:
            raise OSError(f"{host} does not resolve")
        return [
            ResolveResult(
                hostname=host,
                host=self.table[host],
                port=port,
                family=socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
        ]

    async def close(self) -> None:
        pass


async def fetch_through_guard(
    policy: AddressPolicy, host: str, resolver: AbstractResolver | None = None
) -> tuple[int | BaseException, list[str]]:
    """Start a server on 127.0.0.1, GET it as ``host`` through the guard.

    Returns the status (or the exception) and the paths the server saw.
    """
    seen: list[str] = []

    async def handler(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="internal secrets")

    app = web.Application()
    app.router.add_get("/{tail:.*}", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        connector = guarded_connector(policy, resolver=resolver)
        async with aiohttp.ClientSession(connector=connector) as session:
            try:
                async with session.get(f"http://{host}:{port}/latest/meta-data") as response:
                    await response.read()
                    return response.status, seen
            except aiohttp.ClientError as exc:
                return exc, seen
    finally:
        await runner.cleanup()


def test_dns_rebinding_is_refused_at_connect_time(monkeypatch: pytest.MonkeyPatch) -> None:
    # Saved while the attacker's DNS answered with a public address...
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo({"rebind.test": ["93.184.216.34"]}))
    assert validate_base_url("http://rebind.test", STRICT) == "http://rebind.test"

    # ...then the name is rebound to loopback before the relay connects.
    resolver = StaticResolver({"rebind.test": "127.0.0.1"})
    outcome, seen = asyncio.run(fetch_through_guard(STRICT, "rebind.test", resolver))

    assert isinstance(outcome, aiohttp.ClientConnectorDNSError)
    cause = unsafe_address_cause(outcome)
    assert isinstance(cause, UnsafeUpstreamAddress)
    assert "rebind.test resolved to 127.0.0.1 at connect time" in str(cause)
    assert "loopback address" in str(outcome)
    assert resolver.calls == 1
    assert seen == []


def test_rebinding_target_is_reached_when_loopback_is_allowed() -> None:
    resolver = StaticResolver({"rebind.test": "127.0.0.1"})

    outcome, seen = asyncio.run(fetch_through_guard(LOOPBACK_OK, "rebind.test", resolver))

    assert outcome == 200
    assert seen == ["/latest/meta-data"]


def test_literal_ip_bypassing_the_resolver_is_refused_by_the_socket_factory() -> None:
    # aiohttp never calls the resolver for a literal IP (nor for a redirect to
    # one); the socket factory still sees the address it is asked to connect to.
    outcome, seen = asyncio.run(fetch_through_guard(STRICT, "127.0.0.1"))

    assert isinstance(outcome, aiohttp.ClientConnectorError)
    assert not isinstance(outcome, aiohttp.ClientConnectorDNSError)
    cause = unsafe_address_cause(outcome)
    assert cause is not None
    assert "refusing to connect to 127.0.0.1" in str(cause)
    assert seen == []


def test_guarded_resolver_checks_the_default_resolver(monkeypatch: pytest.MonkeyPatch) -> None:
    # aiohttp's default resolver runs socket.getaddrinfo in a thread.
    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo({"evil.example": ["10.1.2.3"]}))

    async def resolve() -> None:
        resolver = GuardedResolver(STRICT)
        try:
            await resolver.resolve("evil.example", 443)
        finally:
            await resolver.close()

    with pytest.raises(
        UnsafeUpstreamAddress, match=re.escape("evil.example resolved to 10.1.2.3")
    ) as info:
        asyncio.run(resolve())
    # Catchable both ways: as a connection error and as an unsafe URL.
    assert isinstance(info.value, OSError)
    assert isinstance(info.value, UnsafeUpstreamURL)


def test_ordinary_connection_errors_are_not_mistaken_for_refusals() -> None:
    async def fetch_closed_port() -> BaseException:
        port = free_port()
        async with aiohttp.ClientSession(connector=guarded_connector(LOOPBACK_OK)) as session:
            try:
                await session.get(f"http://127.0.0.1:{port}/")
            except aiohttp.ClientError as exc:
                return exc
        raise AssertionError("the closed port answered")

    error = asyncio.run(fetch_closed_port())

    assert isinstance(error, aiohttp.ClientConnectorError)
    assert unsafe_address_cause(error) is None
