"""The pipelined limits-store connection (gateway/redis_pipe.py) against a real redis-server:
replies reach the right callers, calls of one loop turn share a write, and every way the
server can fail ends in redis-py's exceptions within the timeout, then recovers."""

from __future__ import annotations

import asyncio
import os
import signal
import tempfile
import time
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import ResponseError
from redis.exceptions import TimeoutError as RedisTimeoutError

from gateway.redis_pipe import PipelinedRedis, Script, encode
from scripts.services import redis_server
from tests.polling import until_async

ECHO = Script("return {KEYS[1], ARGV[1]}")


def run(test: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    return asyncio.run(test())


def count_writes(client: PipelinedRedis) -> list[int]:
    """How many times the connection's transport is written to, from now on."""
    protocol = client._protocol
    assert protocol is not None and protocol.transport is not None
    transport, writes = protocol.transport, [0]
    original = transport.write

    class Counting:
        def __getattr__(self, name: str) -> Any:
            return getattr(transport, name)

        def write(self, data: bytes) -> None:
            writes[0] += 1
            original(data)

    protocol.transport = Counting()  # type: ignore[assignment]
    return writes


def test_encode_writes_the_redis_protocol() -> None:
    assert encode(["SET", "k", b"\x00v", 3, 1.5]) == (
        b"*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\n\x00v\r\n$1\r\n3\r\n$3\r\n1.5\r\n"
    )


def test_concurrent_calls_get_their_own_replies_in_one_write() -> None:
    with redis_server() as server:

        async def main() -> None:
            client = PipelinedRedis(f"redis://127.0.0.1:{server.port}/0", timeout=2)
            assert await client.evalsha(ECHO, ["k"], ["v"]) == [b"k", b"v"]  # loads it
            writes = count_writes(client)
            replies = await asyncio.gather(
                *(client.evalsha(ECHO, [f"key{i}"], [i]) for i in range(200))
            )
            assert replies == [[f"key{i}".encode(), str(i).encode()] for i in range(200)]
            assert writes[0] == 1  # one loop turn's calls, one write
            await client.aclose()

        run(main)


def test_an_unknown_script_is_sent_whole_once_then_by_sha() -> None:
    with redis_server() as server:

        async def main() -> None:
            client = PipelinedRedis(f"redis://127.0.0.1:{server.port}/0", timeout=2)
            assert await client.execute("SCRIPT", "EXISTS", ECHO.sha) == [0]
            assert await client.evalsha(ECHO, ["a"], ["b"]) == [b"a", b"b"]
            assert await client.execute("SCRIPT", "EXISTS", ECHO.sha) == [1]
            await client.execute("SCRIPT", "FLUSH")  # as after a restart
            assert await client.evalsha(ECHO, ["c"], ["d"]) == [b"c", b"d"]
            await client.aclose()

        run(main)


def test_an_error_reply_fails_only_its_caller() -> None:
    with redis_server() as server:

        async def main() -> None:
            client = PipelinedRedis(f"redis://127.0.0.1:{server.port}/0", timeout=2)
            await client.execute("SET", "text", "x")
            outcomes: tuple[Any, ...] = await asyncio.gather(
                client.execute("GET", "text"),
                client.execute("INCR", "text"),
                client.execute("ECHO", "fine"),
                return_exceptions=True,
            )
            good, bad, after = outcomes
            assert good == b"x"
            assert isinstance(bad, ResponseError) and "not an integer" in str(bad)
            assert after == b"fine"
            await client.aclose()

        run(main)


def test_a_caller_that_gives_up_does_not_shift_the_replies() -> None:
    # DEBUG SLEEP is refused by default since Redis 7: without this the "slow" call failed at
    # once and nothing was ever cancelled while waiting.
    with redis_server("--enable-debug-command", "local") as server:

        async def main() -> None:
            client = PipelinedRedis(f"redis://127.0.0.1:{server.port}/0", timeout=2)
            await client.execute("PING")
            # The first caller blocks the connection for 0.3 s and is cancelled meanwhile.
            slow = asyncio.ensure_future(client.execute("DEBUG", "SLEEP", "0.3"))
            protocol = client._protocol
            assert protocol is not None
            await until_async(
                lambda: len(protocol.waiters) == 1 and not protocol.outgoing,
                "the slow command to be written",
            )
            rest = [asyncio.ensure_future(client.execute("ECHO", str(i))) for i in range(5)]
            slow.cancel()
            assert await asyncio.gather(*rest) == [str(i).encode() for i in range(5)]
            assert slow.cancelled()  # it was still waiting: its late reply was skipped
            assert await client.execute("ECHO", "next") == b"next"
            await client.aclose()

        run(main)


def test_a_frozen_server_costs_the_timeout_then_the_connection_is_replaced() -> None:
    with redis_server() as server:

        async def main() -> None:
            client = PipelinedRedis(f"redis://127.0.0.1:{server.port}/0", timeout=0.3)
            await client.execute("PING")
            first = client._protocol
            os.kill(server.proc.pid, signal.SIGSTOP)
            try:
                for attempt in range(2):
                    started = time.monotonic()
                    with pytest.raises(RedisTimeoutError):
                        await client.execute("PING")
                    assert time.monotonic() - started < 1.0
                    # Silent once: maybe our own stalled loop. Twice: taken for dead.
                    assert (client._protocol is first) == (attempt == 0)
            finally:
                os.kill(server.proc.pid, signal.SIGCONT)
            assert await client.execute("ECHO", "back") == b"back"
            assert client._protocol is not first
            await client.aclose()

        run(main)


def test_a_killed_server_fails_fast_and_a_restarted_one_is_found_again() -> None:
    with redis_server() as server:
        port = server.port

        async def killed() -> PipelinedRedis:
            client = PipelinedRedis(f"redis://127.0.0.1:{port}/0", timeout=2)
            await client.execute("PING")
            server.kill()
            protocol = client._protocol
            assert protocol is not None
            await until_async(lambda: protocol.lost, "the client to notice the lost connection")
            for _ in range(2):  # the lost connection, then the refused reconnect
                started = time.monotonic()
                with pytest.raises(RedisConnectionError):
                    await client.execute("PING")
                assert time.monotonic() - started < 1.0
            return client

        client = run(killed)
    # A new server on the same port: the next call connects to it.
    with redis_server(port=port):

        async def recovered() -> None:
            assert await client.execute("ECHO", "again") == b"again"
            await client.aclose()

        run(recovered)


def test_a_stalled_event_loop_does_not_throw_away_a_working_connection() -> None:
    with redis_server() as server:

        async def main() -> None:
            client = PipelinedRedis(f"redis://127.0.0.1:{server.port}/0", timeout=0.2)
            await client.execute("PING")
            first = client._protocol
            waiting = asyncio.ensure_future(client.execute("ECHO", "late"))
            await asyncio.sleep(0)  # sent; the reply comes back at once...
            time.sleep(0.4)  # ...but this loop is blocked past the timeout
            with pytest.raises(RedisTimeoutError):
                await waiting
            assert client._protocol is first  # kept: the server did answer
            assert await client.execute("ECHO", "next") == b"next"
            await client.aclose()

        run(main)


def test_password_database_and_unix_socket_from_the_url() -> None:
    with tempfile.TemporaryDirectory() as directory:
        sock = os.path.join(directory, "redis.sock")
        with redis_server("--requirepass", "s3cret", "--unixsocket", sock) as server:

            async def main() -> None:
                url = f"redis://:s3cret@127.0.0.1:{server.port}/3"
                client = PipelinedRedis(url, timeout=2)
                await client.execute("SET", "where", "db3")
                assert await client.execute("GET", "where") == b"db3"
                await client.aclose()
                over_socket = PipelinedRedis(f"unix://:s3cret@{sock}?db=3", timeout=2)
                assert await over_socket.execute("GET", "where") == b"db3"
                await over_socket.aclose()
                refused = PipelinedRedis(
                    f"redis://:Zq9-not-it@127.0.0.1:{server.port}/0", timeout=2
                )
                with pytest.raises(RedisConnectionError) as failure:
                    await refused.execute("PING")
                assert "Zq9-not-it" not in str(failure.value)  # the password is never echoed

            run(main)


def self_signed(directory: str) -> tuple[str, str]:
    """A certificate for 127.0.0.1 and its key, as PEM files (the certificate is its own CA)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "baton-test-redis")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = os.path.join(directory, "cert.pem"), os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as out:
        out.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    return cert_path, key_path


def test_tls_with_the_servers_certificate_verified() -> None:
    with tempfile.TemporaryDirectory() as directory:
        cert, key = self_signed(directory)
        with redis_server(tls=(cert, key)) as server:
            port = server.port

            async def main() -> None:
                trusted = PipelinedRedis(f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={cert}", 2)
                assert await trusted.evalsha(ECHO, ["over"], ["tls"]) == [b"over", b"tls"]
                await trusted.aclose()
                # The system's CAs do not know this certificate: refused, not silently used.
                unknown = PipelinedRedis(f"rediss://127.0.0.1:{port}/0", 2)
                with pytest.raises(RedisConnectionError):
                    await unknown.execute("PING")
                # Plain text against a TLS port gets no reply, only the timeout.
                plain = PipelinedRedis(f"redis://127.0.0.1:{port}/0", 0.3)
                with pytest.raises((RedisConnectionError, RedisTimeoutError)):
                    await plain.execute("PING")

            run(main)
