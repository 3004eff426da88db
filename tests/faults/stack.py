"""Baton's production stack as real processes, a bounded load through it, and the ledger it
leaves, for the fault suite (tests/faults/test_under_load.py).

- ``Stack``: Baton under ``gateway.serve`` with two workers (DEBUG off, metrics across
  workers), the usage consumer (``manage.py consume_usage``), a Celery worker and beat, on a
  PostgreSQL and a Redis (append-only file, as deployed) of the test's own, which it stops and
  starts again; the upstream is the fake in a process of its own.
- ``Timeline``: the faults in the order they happened. A request notes how many had happened
  when it started and when it ended, so a test can tell which faults it lived through without
  reading a clock.
- ``Load``: client threads sending chat requests, streamed and not, each with its own
  ``x-client-request-id`` that it also writes into the prompt, where the fake upstream's
  request log shows it: the upstream's log is the truth of what reached a provider.
- ``Ledger``: the usage and credit ledgers, read with SQL from the test's own PostgreSQL (the
  test process's Django connection is on the session's database, which Baton does not use).
"""

from __future__ import annotations

import contextlib
import itertools
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import orjson
import psycopg
import redis as redis_lib

from billing.consumer import GROUP
from billing.events import STREAM_KEY
from scripts.services import Postgres, Server, redis_server
from tests.ops.test_metrics import scrape, total
from tests.polling import until
from tests.processes import (
    BatonProcess,
    FakeUpstreamProcess,
    Program,
    baton_environment,
    celery_command,
    consumer_command,
)

MARKER = re.compile(r"\[(load-\d+)\]")
STARTED = "Application startup complete."  # uvicorn, once per worker process


class Timeline:
    """The faults injected so far, in order; ``position`` is how many."""

    def __init__(self) -> None:
        self.events: list[str] = []
        self._lock = threading.Lock()

    @property
    def position(self) -> int:
        return len(self.events)

    def mark(self, event: str) -> None:
        with self._lock:
            assert event not in self.events, f"{event} twice"
            self.events.append(event)

    def index(self, event: str) -> int:
        return self.events.index(event)


@dataclass
class Outcome:
    """What one client saw of one request."""

    client_id: str
    stream: bool
    started: int  # Timeline.position when it was sent
    ended: int = -1  # ... and when its answer ended (or broke off)
    status: int | None = None
    code: str | None = None  # the error's code (from the body, or an in-stream error event)
    message: str = ""
    request_id: str | None = None  # Baton's x-request-id, when the headers arrived
    echoed: str | None = None  # x-client-request-id as Baton echoed it
    retry_after: str | None = None
    complete: bool = False  # the whole answer: a completion, or a stream up to [DONE]
    error: str | None = None  # the transport error that ended it (the connection broke)

    def lived_through(self, timeline: Timeline, event: str) -> bool:
        """Whether ``event`` happened while this request was in flight."""
        return event in timeline.events and self.started <= timeline.index(event) < self.ended

    def after(self, timeline: Timeline, event: str) -> bool:
        """Whether ``event`` had happened by the time this request ended."""
        return event in timeline.events and timeline.index(event) < self.ended


@dataclass
class Load:
    """``concurrency`` clients each sending one request after another (a keep-alive
    connection each, as SDKs do), until ``stop`` or ``limit`` requests in all. Every other
    request streams; each asks for ``max_tokens`` tokens."""

    base_url: str
    key: str
    timeline: Timeline
    concurrency: int
    limit: int
    max_tokens: int
    outcomes: list[Outcome] = field(default_factory=list)
    stopping: threading.Event = field(default_factory=threading.Event)
    _numbers: Iterator[int] = field(default_factory=itertools.count)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _threads: list[threading.Thread] = field(default_factory=list)
    # Streams sending tokens right now: client id -> the client's local port.
    streaming: dict[str, int] = field(default_factory=dict)

    def start(self) -> None:
        for index in range(self.concurrency):
            thread = threading.Thread(target=self._client, name=f"load-{index}", daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self.stopping.set()
        for thread in self._threads:
            thread.join(60)
            assert not thread.is_alive(), "a load client did not finish"

    def done(self) -> int:
        return len(self.outcomes)

    def served_since(self, position: int) -> int:
        """Requests answered in full that started after ``position`` faults."""
        return sum(1 for o in list(self.outcomes) if o.complete and o.started >= position)

    def _client(self) -> None:
        with httpx.Client(
            base_url=self.base_url,
            timeout=httpx.Timeout(30, connect=5),
            limits=httpx.Limits(max_connections=1, max_keepalive_connections=1),
        ) as client:
            while not self.stopping.is_set():
                with self._lock:
                    number = next(self._numbers)
                if number >= self.limit:
                    return
                outcome = self.send(client, f"load-{number:05d}", stream=number % 2 == 1)
                with self._lock:
                    self.outcomes.append(outcome)

    def send(self, client: httpx.Client, client_id: str, *, stream: bool) -> Outcome:
        body: dict[str, Any] = {
            "model": "gpt-4o",
            "messages": [{"role": "user", "content": f"[{client_id}] keep the meter running"}],
            "max_tokens": self.max_tokens,
        }
        if stream:
            body["stream"] = True
        headers = {"authorization": f"Bearer {self.key}", "x-client-request-id": client_id}
        outcome = Outcome(client_id, stream, started=self.timeline.position)
        try:
            with client.stream(
                "POST", "/v1/chat/completions", json=body, headers=headers
            ) as response:
                outcome.status = response.status_code
                outcome.request_id = response.headers.get("x-request-id")
                outcome.echoed = response.headers.get("x-client-request-id")
                outcome.retry_after = response.headers.get("retry-after")
                if response.status_code != 200:
                    error = orjson.loads(response.read()).get("error") or {}
                    outcome.code, outcome.message = error.get("code"), error.get("message", "")
                elif stream:
                    address = response.extensions["network_stream"].get_extra_info("client_addr")
                    try:
                        for line in response.iter_lines():
                            if line == "data: [DONE]":
                                outcome.complete = True
                            elif line.startswith("data: ") and '"error"' in line:
                                error = orjson.loads(line[6:]).get("error") or {}
                                outcome.code = error.get("code") or error.get("type")
                                outcome.message = error.get("message", "")
                            elif line.startswith("data: "):
                                self.streaming[client_id] = address[1]
                    finally:
                        self.streaming.pop(client_id, None)
                else:
                    outcome.complete = bool(orjson.loads(response.read()).get("choices"))
        except httpx.HTTPError as exc:
            outcome.error = f"{type(exc).__name__}: {exc}"
        outcome.ended = self.timeline.position
        return outcome


class Stack:
    """The processes of a deployment, on ``database`` (which the test stops and starts
    itself) and ``redis`` (keeping its files in ``redis_dir``; ``restart_redis`` starts it
    again), with ``env`` added to each one's environment."""

    def __init__(
        self,
        workdir: Path,
        database: Postgres,
        redis: Server,
        redis_dir: Path,
        env: dict[str, str],
    ) -> None:
        self.workdir = workdir
        self.database = database
        self.redis = redis
        self.redis_dir = redis_dir
        self.cleanup = contextlib.ExitStack()
        (workdir / "metrics").mkdir()
        self.env = baton_environment(
            {
                "DEBUG": "0",
                "DATABASE_URL": database.url,
                "REDIS_URL": redis.redis_url,
                "PROMETHEUS_MULTIPROC_DIR": str(workdir / "metrics"),
                **env,
            }
        )
        self.programs: list[Program] = []
        self.baton: BatonProcess | None = None
        self.consumers = 0

    def start(self) -> None:
        """Every process, each waited for until it does its work: a Celery worker and beat
        take a while to start on a busy machine, and a fault before they run tests nothing."""
        self.baton = BatonProcess(environ=self.env, workers=2)
        self.baton.wait_ready(timeout=120)  # two Django processes starting on a busy machine
        self.consumer = self.start_consumer()
        self.worker = self.program(celery_command("worker", "--concurrency", "2"))
        schedule = str(self.workdir / "celerybeat-schedule")
        self.beat = self.program(celery_command("beat", "--schedule", schedule))
        until(lambda: self.web.logs().count(STARTED) == 2, "both web workers", 120, 0.2)
        until(lambda: " ready." in self.worker.logs(), "the Celery worker", 120, 0.2)
        until(lambda: "beat: Starting" in self.beat.logs(), "Celery beat", 120, 0.2)
        until(lambda: self.consumed() is not None, "the consumer group", 120, 0.2)

    def consumed(self) -> set[str] | None:
        """The consumers that have read from the usage stream (a consumer joins the group with
        its first read of an event), or None before the group exists."""
        client = redis_lib.Redis.from_url(self.redis.redis_url)
        try:
            consumers = client.xinfo_consumers(STREAM_KEY, GROUP)
        except redis_lib.ResponseError:  # no stream or group yet
            return None
        finally:
            client.close()
        return {consumer["name"].decode() for consumer in consumers}

    def program(self, command: list[str]) -> Program:
        program = Program(command, self.env)
        self.programs.append(program)
        return program

    def start_consumer(self) -> Program:
        self.consumers += 1
        self.consumer_name = f"fault-consumer-{self.consumers}"
        return self.program(consumer_command(self.consumer_name))

    @property
    def web(self) -> BatonProcess:
        assert self.baton is not None
        return self.baton

    def restart_redis(self) -> None:
        """Redis again on the same port and files, after the test stopped it; it runs until
        the stack stops."""
        assert self.redis.proc.poll() is not None, "stop Redis first"
        self.redis = self.cleanup.enter_context(
            redis_server(port=self.redis.port, directory=self.redis_dir, appendonly=True)
        )

    def metric(self, name: str, **labels: str) -> float | None:
        """A metric summed over the web workers, or None while none answers."""
        try:
            return total(scrape(self.web.base_url), name, **labels)
        except (httpx.HTTPError, AssertionError):
            return None

    def logs(self) -> str:
        """Every process's output, for a failing assertion to show."""
        parts = [f"--- baton\n{self.web.logs()[-20000:]}"]
        for program in self.programs:
            parts.append(f"--- {' '.join(program.command[-4:])}\n{program.logs()[-8000:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        with self.cleanup:
            for program in self.programs:
                program.stop()
            if self.baton is not None:
                self.baton.stop()


def upstream_requests(fake: FakeUpstreamProcess) -> list[dict[str, Any]]:
    """The chat requests that reached the fake upstream, each with the load's client id."""
    found = []
    for record in fake.requests():
        if record["endpoint"] != "chat/completions" or not isinstance(record["body"], dict):
            continue
        text = str(record["body"]["messages"][0]["content"])
        match = MARKER.search(text)
        if match:
            found.append({**record, "client_id": match.group(1)})
    return found


@dataclass(frozen=True)
class Row:
    request_id: str
    client_request_id: str
    status: int
    error_class: str
    estimated: bool
    prompt_tokens: int
    completion_tokens: int
    cost: Decimal | None
    created_at: datetime


class Ledger:
    """The usage and credit ledgers in the stack's own database (SQL, from the test)."""

    def __init__(self, database: Postgres, team_id: Any) -> None:
        self.url = database.url
        self.team_id = str(team_id)

    def _query(self, sql: str, *args: Any) -> list[tuple[Any, ...]]:
        with psycopg.connect(self.url, connect_timeout=5) as connection:
            return connection.execute(sql, (self.team_id, *args)).fetchall()

    def rows(self) -> list[Row]:
        return [
            Row(*values)
            for values in self._query(
                "SELECT request_id, client_request_id, status, error_class, estimated, "
                "prompt_tokens, completion_tokens, cost, created_at "
                "FROM billing_usagerecord WHERE team_id = %s"
            )
        ]

    def spend(self, since: datetime | None, key_id: Any | None = None) -> Decimal:
        """The team's (or one key's) recorded spend since ``since`` (ever, with None)."""
        sql = "SELECT COALESCE(SUM(cost), 0) FROM billing_usagerecord WHERE team_id = %s"
        args: list[Any] = []
        if since is not None:
            sql += " AND created_at >= %s"
            args.append(since)
        if key_id is not None:
            sql += " AND api_key_id = %s"
            args.append(str(key_id))
        value: Decimal = self._query(sql, *args)[0][0]
        return value

    def charged(self) -> Decimal:
        """Usage debited from the prepaid credit ledger (``billing.charge_usage``), positive."""
        value: Decimal = self._query(
            "SELECT COALESCE(-SUM(amount), 0) FROM billing_creditentry "
            "WHERE team_id = %s AND kind = 'usage'"
        )[0][0]
        return value


def day_start(now: datetime) -> datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC)


def month_start(now: datetime) -> datetime:
    return day_start(now).replace(day=1)
