"""Throwaway servers for the tests and the benchmark, from the machine's own binaries.

The one home of what starts a server for a test or a benchmark run: ``free_port``,
``wait_for_port`` (which notices a server that died at start), a throwaway PostgreSQL cluster
(``postgres``, or ``Postgres`` to stop and start it again) and throwaway Redis servers (``redis_server``: plain, with an append-only file,
with TLS, or with any other redis-server option), Redis Clusters (``redis_cluster``) and
Sentinel groups (``redis_sentinel``). ``scripts/services.py``, ``tests/`` and
``bench/`` all use it; it imports nothing of Baton.

``python scripts/services.py -- CMD ARGS...`` starts a fresh PostgreSQL cluster
and a Redis server on free loopback ports in a temporary directory, runs CMD
with ``DATABASE_URL`` and ``REDIS_URL`` pointing at them, then stops both and
deletes everything. The exit status is CMD's. ``make test`` and ``make bench``
use it; nothing is left behind and no system service is touched. ``--redis
cluster`` puts ``REDIS_URL`` on a local Redis Cluster instead (``redis_cluster``;
the one Redis server stays, as ``CELERY_BROKER_URL``), ``--redis sentinel`` on a
Sentinel group (``redis_sentinel``).

PostgreSQL refuses to run as root, so as root the cluster is created and run
as the ``postgres`` OS user.
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOOPBACK = "127.0.0.1"


class ServiceError(RuntimeError):
    """A server could not be started."""


class MissingBinary(ServiceError):
    """The server's program is not installed."""


def _pg_bindir() -> Path:
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    for candidate in reversed(candidates):
        if (Path(candidate) / "initdb").exists():
            return Path(candidate)
    found = shutil.which("initdb")
    if found:
        return Path(found).parent
    raise MissingBinary("PostgreSQL server binaries not found: apt-get install postgresql")


def _redis_binary() -> str:
    found = shutil.which("redis-server")
    if not found:
        raise MissingBinary("redis-server not found: apt-get install redis-server")
    return found


def free_port() -> int:
    """A loopback TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, proc: subprocess.Popen[bytes], what: str = "process", timeout: float = 30
) -> None:
    """Return once ``port`` accepts connections; fail at once if ``proc`` exits first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{what} exited at start with status {proc.returncode}")
        with (
            contextlib.suppress(OSError),
            socket.create_connection((LOOPBACK, port), timeout=0.2),
        ):
            return
        time.sleep(0.05)
    raise ServiceError(f"{what} did not start listening on port {port}")


@dataclass
class Server:
    """A server process of a test or a benchmark, listening on ``port``."""

    proc: subprocess.Popen[bytes]
    port: int

    @property
    def base_url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    @property
    def redis_url(self) -> str:
        return f"redis://{LOOPBACK}:{self.port}/0"

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save (a crash)."""
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(10)

    def stop(self, timeout: float = 10) -> None:
        """A clean shutdown (thawed first if a test froze it), or SIGKILL after ``timeout``."""
        if self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(self.proc.pid, signal.SIGCONT)
        self.proc.terminate()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()


def _as_postgres() -> dict[str, Any]:
    """Popen arguments that drop root to the postgres user."""
    if os.geteuid() != 0:
        return {}
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError as exc:
        raise MissingBinary(
            "running as root needs the 'postgres' OS user: apt-get install postgresql"
        ) from exc
    return {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}


class Postgres:
    """A fresh PostgreSQL cluster in ``workdir/pg`` with a database ``baton``, on a port of its
    own. ``stop`` (a fast shutdown: every session is cut) and ``start`` again on the same port
    make a database outage for a test; ``postgres`` below is the usual context manager."""

    def __init__(self, workdir: Path) -> None:
        self.bindir = _pg_bindir()
        self.workdir = workdir
        self.datadir = workdir / "pg"
        self.datadir.mkdir()
        self.drop = _as_postgres()
        if self.drop:
            os.chown(workdir, self.drop["user"], self.drop["group"])
            os.chown(self.datadir, self.drop["user"], self.drop["group"])
        subprocess.run(
            [
                str(self.bindir / "initdb"),
                "-D",
                str(self.datadir),
                "-U",
                "baton",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            **self.drop,
        )
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"postgres://baton@{LOOPBACK}:{self.port}/baton"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            [
                str(self.bindir / "postgres"),
                "-D",
                str(self.datadir),
                "-p",
                str(self.port),
                "-k",
                str(self.workdir),
                "-c",
                f"listen_addresses={LOOPBACK}",
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
                "-c",
                "max_connections=300",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.workdir / "postgres.log", "ab"),  # noqa: SIM115
            **self.drop,
        )
        wait_for_port(self.port, self.proc, "postgres")
        # The server accepts connections a moment before it accepts logins.
        deadline = time.monotonic() + 20
        while (
            subprocess.run(
                [self.tool("pg_isready"), "-h", LOOPBACK, "-p", str(self.port), "-U", "baton"],
                stdout=subprocess.DEVNULL,
            ).returncode
            and time.monotonic() < deadline
        ):
            time.sleep(0.1)

    def create_database(self) -> None:
        subprocess.run(
            [self.tool("createdb"), "-h", LOOPBACK, "-p", str(self.port), "-U", "baton", "baton"],
            check=True,
        )

    def stop(self) -> None:
        """A fast shutdown (SIGINT): open sessions are cut, new connections refused."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()

    def tool(self, name: str) -> str:
        """The path of one of PostgreSQL's client programs (``pg_dump``, ``psql``...)."""
        return str(self.bindir / name)


def copy_database(source_url: str, target: Postgres) -> None:
    """Schema and rows of the database at ``source_url`` into ``target``'s database ``baton``."""
    dump = subprocess.run(
        [target.tool("pg_dump"), "--no-owner", "--no-privileges", "--dbname", source_url],
        check=True,
        capture_output=True,
    )
    subprocess.run(
        [target.tool("psql"), "--quiet", "--set", "ON_ERROR_STOP=1", "--dbname", target.url],
        input=dump.stdout,
        check=True,
        stdout=subprocess.DEVNULL,
    )


@contextlib.contextmanager
def postgres(workdir: Path) -> Iterator[str]:
    """A fresh PostgreSQL cluster in ``workdir/pg`` with a database ``baton``: its URL."""
    cluster = Postgres(workdir)
    try:
        cluster.start()
        cluster.create_database()
        yield cluster.url
    finally:
        cluster.stop()


@contextlib.contextmanager
def redis_server(
    *options: str,
    port: int | None = None,
    directory: str | Path | None = None,
    appendonly: bool = False,
    tls: tuple[str, str] | None = None,
) -> Iterator[Server]:
    """A throwaway redis-server on loopback, stopped (and thawed) on the way out.

    ``options`` are redis-server's own and come last, so they win (e.g. ``"--requirepass",
    "secret"`` or ``"--enable-debug-command", "local"``). ``directory`` keeps its files (and
    with ``appendonly`` its append-only file) for a server started again on the same
    ``port``; by default they go in a temporary directory. ``tls``, a (certificate, key) pair
    of PEM files where the certificate is its own CA, serves TLS only, on ``port``.
    """
    port = port or free_port()
    with contextlib.ExitStack() as cleanup:
        if directory is None:
            directory = cleanup.enter_context(tempfile.TemporaryDirectory(prefix="baton-redis-"))
        command = [_redis_binary(), "--port", str(port), "--bind", LOOPBACK]
        command += ["--dir", str(directory), "--save", ""]
        command += ["--appendonly", "yes" if appendonly else "no", "--protected-mode", "yes"]
        if tls is not None:
            cert, key = tls
            command += ["--port", "0", "--tls-port", str(port), "--tls-auth-clients", "no"]
            command += ["--tls-cert-file", cert, "--tls-key-file", key, "--tls-ca-cert-file", cert]
        proc = subprocess.Popen([*command, *options], stdout=subprocess.DEVNULL)
        server = Server(proc, port)
        cleanup.callback(server.stop)
        wait_for_port(port, proc, "redis-server")
        yield server


def redis_cli(port: int, *args: str, timeout: float = 30) -> str:
    """``redis-cli -p port args...``: its output, or ``ServiceError`` with it."""
    found = shutil.which("redis-cli")
    if not found:
        raise MissingBinary("redis-cli not found: apt-get install redis-server (or redis-tools)")
    done = subprocess.run(
        [found, "-h", LOOPBACK, "-p", str(port), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode:
        raise ServiceError(f"redis-cli {' '.join(args)}: {done.stdout}{done.stderr}")
    return done.stdout


# A replica's full sync starts at once (Redis waits 5 s by default for more replicas to join
# a diskless sync), so a cluster or Sentinel group is ready, or a replica resynced, sooner.
FAST_SYNC = ("--repl-diskless-sync-delay", "0")


def _until(condition: Any, what: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise ServiceError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _in_sync(port: int) -> bool:
    """A replica, or a primary whose replicas have all finished their first sync."""
    lines = redis_cli(port, "info", "replication").splitlines()
    if "role:master" not in lines:
        return True
    replicas = [line for line in lines if line.startswith("slave") and ":ip=" in line]
    return all("state=online" in line for line in replicas)


@dataclass
class Cluster:
    """A local Redis Cluster: ``nodes`` are its servers (three primaries, each with a replica,
    as ``redis-cli --cluster create`` paired them)."""

    nodes: list[Server]

    @property
    def url(self) -> str:
        return "redis+cluster://" + ",".join(f"{LOOPBACK}:{n.port}" for n in self.nodes)

    def healthy(self, port: int | None = None) -> bool:
        """Every node alive answers ``cluster_state:ok`` (or just the one on ``port``)."""
        ports = [port] if port else [n.port for n in self.nodes if n.proc.poll() is None]
        for each in ports:
            try:
                if "cluster_state:ok" not in redis_cli(each, "cluster", "info", timeout=5):
                    return False
            except (ServiceError, subprocess.TimeoutExpired):
                return False
        return True


@contextlib.contextmanager
def redis_cluster(
    *options: str, primaries: int = 3, node_timeout_ms: int = 1000
) -> Iterator[Cluster]:
    """A throwaway Redis Cluster on loopback: ``primaries`` primaries with one replica each,
    on free ports (the cluster bus on free ports too), in a temporary directory.
    ``node_timeout_ms`` is how long a silent primary takes to be failed over."""
    with contextlib.ExitStack() as cleanup:
        directory = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="baton-rc-")))
        nodes = []
        for index in range(primaries * 2):
            node_dir = directory / str(index)
            node_dir.mkdir()
            nodes.append(
                cleanup.enter_context(
                    redis_server(
                        "--cluster-enabled",
                        "yes",
                        "--cluster-port",
                        str(free_port()),
                        "--cluster-config-file",
                        "nodes.conf",
                        "--cluster-node-timeout",
                        str(node_timeout_ms),
                        "--cluster-replica-validity-factor",
                        "0",  # a replica may always take over (tests kill primaries)
                        *FAST_SYNC,
                        *options,
                        directory=node_dir,
                    )
                )
            )
        redis_cli(
            nodes[0].port,
            "--cluster",
            "create",
            *(f"{LOOPBACK}:{n.port}" for n in nodes),
            "--cluster-replicas",
            "1",
            "--cluster-yes",
            timeout=60,
        )
        cluster = Cluster(nodes)
        _until(cluster.healthy, "the cluster to agree on its slots", 60)
        _until(lambda: all(_in_sync(n.port) for n in nodes), "the replicas to sync", 60)
        yield cluster


@dataclass
class SentinelGroup:
    """A local Sentinel group: a primary, its replicas and the sentinels watching them."""

    service: str
    servers: list[Server]  # the data nodes, the first the primary it started with
    sentinels: list[Server]

    @property
    def url(self) -> str:
        return f"redis+sentinel://{','.join(f'{LOOPBACK}:{s.port}' for s in self.sentinels)}/{self.service}/0"

    def primary_port(self) -> int:
        """The primary's port, as the first sentinel that answers sees it now."""
        for sentinel in self.sentinels:
            if sentinel.proc.poll() is not None:
                continue
            with contextlib.suppress(ServiceError, subprocess.TimeoutExpired):
                lines = redis_cli(
                    sentinel.port, "sentinel", "get-master-addr-by-name", self.service, timeout=5
                ).split()
                return int(lines[1])
        raise ServiceError("no sentinel answers")

    def server(self, port: int) -> Server:
        return next(s for s in self.servers if s.port == port)


@contextlib.contextmanager
def redis_sentinel(
    *options: str, replicas: int = 2, sentinels: int = 3, down_after_ms: int = 1000
) -> Iterator[SentinelGroup]:
    """A throwaway Sentinel group on loopback: a primary with ``replicas`` replicas and
    ``sentinels`` sentinels (quorum: a majority) monitoring it as the service ``baton``.
    ``down_after_ms`` is how long a silent primary takes to be judged down."""
    service = "baton"
    with contextlib.ExitStack() as cleanup:
        directory = Path(cleanup.enter_context(tempfile.TemporaryDirectory(prefix="baton-rs-")))
        primary = cleanup.enter_context(redis_server(*FAST_SYNC, *options))
        servers = [primary]
        for _ in range(replicas):
            servers.append(
                cleanup.enter_context(
                    redis_server("--replicaof", LOOPBACK, str(primary.port), *FAST_SYNC, *options)
                )
            )
        _until(
            lambda: (
                f"connected_slaves:{replicas}" in redis_cli(primary.port, "info", "replication")
                and _in_sync(primary.port)
            ),
            "the replicas to connect",
        )
        watchers = []
        quorum = sentinels // 2 + 1
        for index in range(sentinels):
            port = free_port()
            conf = directory / f"sentinel-{index}.conf"
            conf.write_text(
                f"port {port}\nbind {LOOPBACK}\ndir {directory}\n"
                f"sentinel monitor {service} {LOOPBACK} {primary.port} {quorum}\n"
                f"sentinel down-after-milliseconds {service} {down_after_ms}\n"
                f"sentinel failover-timeout {service} 10000\n"
                f"sentinel parallel-syncs {service} 1\n"
            )
            proc = subprocess.Popen(
                [_redis_binary(), str(conf), "--sentinel"], stdout=subprocess.DEVNULL
            )
            sentinel = Server(proc, port)
            cleanup.callback(sentinel.stop)
            wait_for_port(port, proc, "redis-sentinel")
            watchers.append(sentinel)
        group = SentinelGroup(service, servers, watchers)

        def settled() -> bool:
            for sentinel in watchers:
                info = redis_cli(sentinel.port, "sentinel", "master", service)
                lines = info.split()
                fields = dict(zip(lines[::2], lines[1::2], strict=False))
                if int(fields.get("num-slaves", 0)) < replicas:
                    return False
                if int(fields.get("num-other-sentinels", 0)) < sentinels - 1:
                    return False
            return True

        _until(settled, "the sentinels to see every replica and each other", 60)
        yield group


USAGE = "usage: services.py [--redis one|sentinel|cluster] -- COMMAND [ARGS...]"


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(USAGE, file=sys.stderr)
        return 2
    options, command = argv[: argv.index("--")], argv[argv.index("--") + 1 :]
    topology = "one"
    if options[:1] == ["--redis"] and len(options) == 2:
        topology = options[1]
    elif options:
        print(USAGE, file=sys.stderr)
        return 2
    if topology not in ("one", "sentinel", "cluster"):
        print(USAGE, file=sys.stderr)
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="baton-services-"))
    try:
        redis_dir = workdir / "redis"
        redis_dir.mkdir()
        with contextlib.ExitStack() as stack:
            database_url = stack.enter_context(postgres(workdir))
            # One Redis always: the whole of it, or (with a cluster) Celery's broker, which
            # kombu cannot put on a cluster.
            redis = stack.enter_context(redis_server(directory=redis_dir))
            env = {**os.environ, "DATABASE_URL": database_url, "REDIS_URL": redis.redis_url}
            if topology == "sentinel":
                env["REDIS_URL"] = stack.enter_context(redis_sentinel()).url
            elif topology == "cluster":
                env["REDIS_URL"] = stack.enter_context(redis_cluster()).url
                env["CELERY_BROKER_URL"] = redis.redis_url
            print(
                f"services: PostgreSQL at {database_url}, Redis at {env['REDIS_URL']}", flush=True
            )
            return subprocess.call(command, env=env)
    except ServiceError as exc:
        raise SystemExit(str(exc)) from None
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
