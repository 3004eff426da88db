"""The admission script itself, on Redis and in process: the same cases, the same answers.

These drive ``billing/quota/admission.lua`` through the calls of ``billing/quota/script.py``
(the only Python that knows its KEYS and ARGV) on a real Redis (through redis-py) and on
the embedded default's in-process store (``billing/quota/local.py``: the same script on
lupa's Lua 5.1).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any, cast

import pytest
from django.conf import settings

from billing.quota import script
from billing.quota.local import LocalLimits
from billing.quota.script import LUA, periods
from billing.quota.snapshots import Limits
from config.redis_clients import sync_client
from tests.polling import until

Run = Callable[[list[str], list[Any]], list[Any]]
NONE = Limits()
WINDOW = 60_000
LEASE = 60_000


class Store:
    """The script on Redis or in process, and a way to write a hash field behind its back."""

    def __init__(self, where: str) -> None:
        self.local = LocalLimits(LUA) if where == "local" else None
        self.client = sync_client(settings.REDIS_URL)
        self.script = self.client.register_script(LUA)
        if self.local is None:
            self.client.flushdb()

    def __call__(self, keys: list[str], args: list[Any]) -> list[Any]:
        if self.local is not None:
            return self.local.run(keys, args)
        return cast(list[Any], self.script(keys=keys, args=args))

    def hset(self, key: str, values: dict[str, int]) -> None:
        if self.local is None:
            self.client.hset(key, mapping=dict(values.items()))
            return
        found = self.local.hashes.setdefault(key.encode(), {})
        for name, value in values.items():
            found[name.encode()] = str(value).encode()


@pytest.fixture(params=["redis", "local"])
def run(request: pytest.FixtureRequest) -> Iterator[Store]:
    store = Store(request.param)
    yield store
    store.client.close()


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Team:
    """One team and its API key "key", driven call by call; remembers the records it placed."""

    def __init__(self, run: Run, *, seeded: bool = True) -> None:
        self.run = run
        self.team = str(uuid.uuid4())
        self.records: dict[str, script.Record] = {}
        self.skipped: Any = 0  # the last settle's: 1 if a scope left it to reconciliation
        if seeded:  # as after a first request: both scopes counted from the ledger's zero
            for scope in (None, "key"):
                self.reconcile(scope, (0, 0, 0))

    def admit(
        self,
        *,
        team: Limits | None = None,
        key: Limits | None = None,
        cost: int = 0,
        tokens: int = 1,
        lease: int = LEASE,
        granted: int | None = None,
        credentials: dict[str, Limits] | None = None,
        all_limited: bool = False,
        noseed: bool = False,
        prune_ms: int = 0,
    ) -> list[Any]:
        """One request; its reply, with the request id appended."""
        request_id = "req_" + uuid.uuid4().hex
        team_active = team is not None or granted is not None
        record = script.Record(
            request_id=request_id,
            key_id="key",
            started_ms=int(time.time() * 1000),
            held=cost,
            prompt=tokens,
            team_held=team_active,
            key_held=key is not None,
            endpoint="chat",
            dialect="chat",
            alias="gpt-4o",
            streamed=False,
            target=script.Target("cred", "openai", "demo-chat", 0, 1_000_000_000),
        )
        self.records[request_id] = record
        day, month = periods()
        request = script.Admit(
            record.member(), cost, tokens, "key", key, credentials or {}, all_limited
        )
        keys, args = script.admit_call(
            team_id=self.team,
            requests=[request],
            team=(team or NONE) if team_active else None,
            granted=granted,
            lease_ms=lease,
            window_ms=WINDOW,
            day=day,
            month=month,
            prune_ms=prune_ms,
            noseed=noseed,
        )
        reply = list(self.run(keys, args)[0])
        reply.append(request_id)
        return reply

    def settle(
        self,
        request_id: str,
        cost: int = 0,
        refund: int = 0,
        *,
        team_tpm: int | None = None,
        key_tpm: int | None = None,
        placed: bool = True,
        at: int | None = None,
        used: int = 0,
        credential: tuple[str, Limits] | None = None,
    ) -> int:
        record = self.records[request_id]
        item = script.Settle(
            record=record.member() if placed else "",
            request_id=request_id,
            key_id="key",
            cost=cost,
            held=record.held,
            tokens_back=refund,
            used=used,
            at_ms=int(time.time() * 1000) if at is None else at,
            renewed=True,
            team_active=record.team_held,
            team_tpm=team_tpm,
            key_active=record.key_held,
            key_tpm=key_tpm,
            credential_id=credential[0] if credential else None,
            credential=credential[1] if credential else None,
        )
        day, month = periods()
        status, self.skipped = self.run(*script.settle_call(self.team, [item], WINDOW, day, month))
        return int(status)

    def peek(self, team: Limits = NONE, key: Limits = NONE) -> list[int]:
        day, month = periods()
        return [
            int(v)
            for v in self.run(*script.peek_call(self.team, "key", WINDOW, day, month, team, key))
        ]

    def reconcile(
        self, scope: str | None, totals: tuple[int, int, int], watermark: int = 0, **kw: Any
    ) -> list[int]:
        day, month = periods()
        call = script.reconcile_call(
            self.team, scope, day, month, totals, watermark_ms=watermark, **kw
        )
        return [int(v) for v in self.run(*call)]

    def renew(self, request_id: str, report: str = "") -> int:
        record = self.records[request_id]
        keys, args = script.renew_call(self.team, [(record, record.member(), report)], LEASE)
        return int(self.run(keys, args)[0])

    def lapsed(self, grace: int = 0, confirm: int = 0) -> list[Any]:
        return list(self.run(*script.lapsed_call(self.team, grace, confirm, 3_600_000, 100)))

    def reap(self, request_id: str, cost: int, grace: int = 0, confirm: int = 0) -> int:
        record = self.records[request_id]
        item = script.Reap(record, record.member(), cost, b"{}")
        day, month = periods()
        call = script.reap_call(self.team, [item], grace, confirm, day, month)
        return int(self.run(*call)[0])


def test_requests_per_minute_is_a_bucket_of_the_limit(run: Store) -> None:
    s = Team(run)
    replies = [s.admit(key=Limits(rpm=3)) for _ in range(4)]
    assert [int(r[0]) for r in replies] == [1, 1, 1, 0]
    refused = replies[3]
    assert (text(refused[1]), int(refused[2]), int(refused[3])) == ("requests", 2, 3)
    # About a third of the window until one request is back.
    assert 19_000 <= int(refused[5]) <= 20_100
    # The success replies carry the headers: key requests limit 3, remaining 2, 1, 0.
    assert [int(r[7]) for r in replies[:3]] == [3, 3, 3]
    assert [int(r[8]) for r in replies[:3]] == [2, 1, 0]


def test_the_team_limit_binds_every_key(run: Store) -> None:
    s = Team(run)
    assert int(s.admit(team=Limits(rpm=1))[0]) == 1
    refused = s.admit(team=Limits(rpm=1))
    assert (int(refused[0]), text(refused[1]), int(refused[2])) == (0, "requests", 1)


def test_tokens_per_minute_reserves_and_refunds(run: Store) -> None:
    s = Team(run)
    first = s.admit(key=Limits(tpm=100), tokens=80)
    assert int(first[0]) == 1
    refused = s.admit(key=Limits(tpm=100), tokens=30)
    assert (text(refused[1]), int(refused[6])) == ("tokens", 30)
    # The first request used only 20 of its 80: the rest comes back.
    s.settle(first[-1], refund=60, key_tpm=100)
    assert int(s.admit(key=Limits(tpm=100), tokens=30)[0]) == 1


def test_a_request_larger_than_the_tokens_limit_can_never_pass(run: Store) -> None:
    refused = Team(run).admit(key=Limits(tpm=100), tokens=101)
    assert (text(refused[1]), int(refused[3]), int(refused[4])) == ("too_large", 100, 101)


def test_concurrency_counts_requests_in_flight(run: Store) -> None:
    s = Team(run)
    first, second = (s.admit(key=Limits(concurrency=2)) for _ in range(2))
    assert int(first[0]) == int(second[0]) == 1
    refused = s.admit(key=Limits(concurrency=2))
    assert (text(refused[1]), int(refused[3]), int(refused[4])) == ("concurrency", 2, 2)
    assert s.settle(first[-1]) == 1
    assert int(s.admit(key=Limits(concurrency=2))[0]) == 1


def test_budget_counts_holds_then_spend(run: Store) -> None:
    s = Team(run)
    a, b = (s.admit(key=Limits(day=100), cost=40) for _ in range(2))
    assert int(a[0]) == int(b[0]) == 1
    held = s.admit(key=Limits(day=100), cost=40)
    # Refused while 80 is held, but not for good: "hard" is 0.
    assert (text(held[1]), int(held[2]), int(held[3]), int(held[4]), int(held[6])) == (
        "budget",
        2,
        1,
        100,
        0,
    )
    s.settle(a[-1], cost=40)
    s.settle(b[-1], cost=40)
    spent = s.admit(key=Limits(day=100), cost=40)
    assert (text(spent[1]), int(spent[5]), int(spent[6])) == ("budget", 80, 1)
    assert int(s.admit(key=Limits(day=100), cost=20)[0]) == 1


def test_a_zero_budget_refuses_even_free_requests(run: Store) -> None:
    refused = Team(run).admit(team=Limits(month=0), cost=0)
    assert (text(refused[1]), int(refused[2]), int(refused[3])) == ("budget", 1, 2)


def test_prepaid_credit_is_granted_minus_lifetime_spend(run: Store) -> None:
    s = Team(run)
    first = s.admit(granted=100, cost=60)
    assert int(first[0]) == 1
    s.settle(first[-1], cost=90)  # cost more than estimated
    refused = s.admit(granted=100, cost=20)
    assert (text(refused[1]), int(refused[4]), int(refused[6])) == ("credit", 10, 1)
    assert int(s.admit(granted=120, cost=20)[0]) == 1  # after a top-up
    empty = Team(run).admit(granted=0, cost=0)
    assert text(empty[1]) == "credit"


def test_a_lease_nobody_renews_frees_its_slot_but_its_money_waits_for_the_reaper(
    run: Store,
) -> None:
    s = Team(run)
    limits = Limits(concurrency=1, day=150)
    left = s.admit(key=limits, cost=100, lease=100)
    assert int(left[0]) == 1
    assert text(s.admit(key=limits)[1]) == "concurrency"
    # Once its lease has ended the slot is free again (the process that held it died).
    admitted = until(
        lambda: (reply := s.admit(key=limits, cost=10))[0] == 1 and reply, "the lease to end"
    )
    in_flight, held = s.peek()[8:10]
    assert (in_flight, held) == (1, 110)  # the new request in flight; both still held
    # A reaper bills the record (its cost counted, its hold let go), once it has seen it
    # lapsed twice: the first look only marks it.
    assert s.reap(left[-1], cost=30) == 0
    assert s.reap(left[-1], cost=30) == 1
    assert s.reap(left[-1], cost=30) == 0  # only once
    assert s.peek()[9] == 10 and s.peek()[12:15] == [30, 30, 30]
    assert s.settle(admitted[-1], cost=5) == 1
    assert s.peek()[8:10] == [0, 0] and s.peek()[12:15] == [35, 35, 35]


def test_a_renewal_keeps_the_record_and_brings_back_a_lapsed_one(run: Store) -> None:
    s = Team(run)
    limits = Limits(concurrency=1)
    first = s.admit(key=limits, lease=100)
    until(lambda: s.admit(key=limits)[0] == 1, "the lease to end")  # pruned: the slot is free
    # The process was only away (it lost Redis for a while): its renewal counts it again.
    assert s.renew(first[-1], report="x") == 1
    assert s.peek()[8] == 2
    assert int(s.admit(key=limits)[0]) == 0
    assert s.settle(first[-1]) == 1
    assert s.renew(first[-1]) == 0  # settled: nothing to renew


def test_settle_and_reap_never_both_count(run: Store) -> None:
    s = Team(run)
    reaped = s.admit(key=Limits(day=1000), cost=100, lease=1)
    settled = s.admit(key=Limits(day=1000), cost=100, lease=1)
    until(lambda: int(s.lapsed()[2]) == 2, "both leases to end")
    s.reap(reaped[-1], cost=40)
    assert s.reap(reaped[-1], cost=40) == 1
    # The process comes back and settles what the reaper took: counted once, by the reaper.
    assert s.settle(reaped[-1], cost=70) == 2
    # And the other way round: settled after its lease ended, the reaper takes nothing.
    s.reap(settled[-1], cost=40)  # a first look
    assert s.settle(settled[-1], cost=70) == 4
    assert s.reap(settled[-1], cost=40) == 0
    assert s.peek()[9] == 0 and s.peek()[12:15] == [110, 110, 110]
    # The reaper keeps the event it claimed until it has seen it in the ledger.
    lapsed = s.lapsed()
    assert int(lapsed[2]) == 0 and [text(v) for v in lapsed[3:]] == [reaped[-1], "{}"]
    run(*script.emitted_call(s.team, [reaped[-1]]))
    lapsed = s.lapsed()
    assert [int(v) for v in lapsed] == [-1, 0, 0]  # nothing left to look at


def test_a_settle_sent_twice_counts_once_and_one_without_record_counts(run: Store) -> None:
    s = Team(run)
    first = s.admit(team=Limits(day=100), cost=50)
    assert s.settle(first[-1], cost=10) == 1
    assert s.settle(first[-1], cost=10) == 3  # a retry whose first reply was lost
    # Admitted while the store was away: no record, and its settle counts.
    unplaced = s.admit(team=Limits(day=100), cost=50)
    assert s.settle(unplaced[-1], cost=50) == 1
    assert s.settle(unplaced[-1], cost=7, placed=False) == 3
    peek = s.peek()
    assert peek[:2] == [0, 0] and peek[4:7] == [67, 67, 67]


def test_spend_lands_on_day_month_and_lifetime_of_both_scopes(run: Store) -> None:
    s = Team(run)
    a = s.admit(team=Limits(rpm=100), key=Limits(rpm=100))
    s.settle(a[-1], cost=123)
    peek = s.peek()
    assert peek[4:8] == [123, 123, 123, 1] and peek[12:16] == [123, 123, 123, 1]


def test_a_scope_without_limits_is_not_counted_and_starts_again_from_the_ledger(
    run: Store,
) -> None:
    s = Team(run)
    a = s.admit()  # neither scope has limits: only the record
    s.settle(a[-1], cost=123)
    assert s.peek()[4:8] == [0, 0, 0, 0] and s.peek()[12:16] == [0, 0, 0, 0]
    # Limits set now: the scope is not seeded, so it is reconciled with the ledger first.
    seed = s.admit(key=Limits(day=1000), cost=1)
    assert (int(seed[0]), text(seed[1]), int(seed[2])) == (0, "seed", 2)
    s.reconcile("key", (123, 123, 123))
    assert int(s.admit(key=Limits(day=1000), cost=1)[0]) == 1
    assert s.peek()[12:16] == [123, 123, 123, 1]


def test_reconciling_raises_counters_to_the_ledger_and_never_lowers_them(run: Store) -> None:
    s = Team(run, seeded=False)
    assert s.reconcile(None, (5, 5, 5), only_seeded=True) == [0] * 6  # not counted: left alone
    assert s.peek()[7] == 0
    assert s.reconcile(None, (50, 70, 90)) == [0, 0, 0, 50, 70, 90]
    a = s.admit(team=Limits(day=1000))
    s.settle(a[-1], cost=30)
    # The ledger is behind the counters (events on their way): nothing goes backwards.
    assert s.reconcile(None, (60, 60, 100), only_seeded=True) == [80, 100, 120, 80, 100, 120]
    # The ledger is ahead (a settle was lost): the counters catch up.
    assert s.reconcile(None, (95, 130, 150)) == [80, 100, 120, 95, 130, 150]
    assert s.peek()[4:8] == [95, 130, 150, 1]


def test_a_settle_counts_only_what_the_last_reconciliation_could_not_have_seen(
    run: Store,
) -> None:
    s = Team(run)
    first, second = (s.admit(team=Limits(day=1000), cost=10) for _ in range(2))
    # The ledger is read at 5000 ms; its totals have every event written before then.
    s.reconcile(None, (10, 10, 10), watermark=5000)
    assert s.settle(first[-1], cost=10, at=4999) == 1 and int(s.skipped) == 1
    assert s.peek()[4:7] == [10, 10, 10]  # in the totals already: not counted again
    assert s.settle(second[-1], cost=20, at=5001) == 1 and int(s.skipped) == 0
    assert s.peek()[4:7] == [30, 30, 30]
    # An older reading landing later does not move the watermark back.
    s.reconcile(None, (0, 0, 0), watermark=4000)
    third = s.admit(team=Limits(day=1000), cost=10)
    assert s.settle(third[-1], cost=10, at=4500) == 1 and int(s.skipped) == 1


def test_a_reaper_pass_recounts_what_is_in_flight_and_held(run: Store) -> None:
    s = Team(run)
    for _ in range(2):
        assert int(s.admit(team=Limits(concurrency=5), key=Limits(day=1000), cost=7)[0]) == 1
    # Drift, as a crash between two writes or a bug would leave it.
    run.hset(script.state(s.team), {"c": 5, "h": 99, "kkey:c": 3, "kkey:h": 1, "kgone:c": 4})
    assert s.peek()[:2] == [2, 99]
    assert int(s.lapsed()[1]) == 3  # the team, its key, and a key with nothing in flight
    assert s.peek()[:2] == [2, 14] and s.peek()[9] == 14
    assert int(s.admit(team=Limits(concurrency=3))[0]) == 1
    assert text(s.admit(team=Limits(concurrency=3))[1]) == "concurrency"
    assert int(s.lapsed()[1]) == 0  # nothing wrong now


def test_credentials_are_a_soft_limit(run: Store) -> None:
    s = Team(run)
    # Credential "c1" has spent its one request (accounted at settle).
    first = s.admit()
    s.settle(first[-1], credential=("c1", Limits(rpm=1)))
    mixed = s.admit(credentials={"c1": Limits(rpm=1), "c2": Limits(rpm=5)}, all_limited=True)
    assert int(mixed[0]) == 1 and int(mixed[13]) == 1 and 50_000 < int(mixed[14]) <= 60_000
    only = s.admit(credentials={"c1": Limits(rpm=1)}, all_limited=True)
    assert (int(only[0]), text(only[1])) == (0, "credential")
    # With an unlimited target besides it, the request goes ahead.
    assert int(s.admit(credentials={"c1": Limits(rpm=1)}, all_limited=False)[0]) == 1


def test_both_stores_answer_alike() -> None:
    """One scripted sequence of every call, compared reply by reply (timings aside): the
    in-process store runs the script as Redis does."""
    remote_store, local_store = Store("redis"), Store("local")

    def both(keys: list[str], args: list[Any]) -> list[Any]:
        remote = remote_store(keys, args)
        here = local_store(keys, args)
        flat_remote, flat_here = _flat(remote), _flat(here)
        assert len(flat_remote) == len(flat_here), (args, flat_remote, flat_here)
        for a, b in zip(flat_remote, flat_here, strict=True):
            if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
                assert abs(int(a) - int(b)) <= 60, (args, flat_remote, flat_here)  # times move
            else:
                assert a == b, (args, flat_remote, flat_here)
        return remote

    s = Team(both)
    shared: dict[str, Any] = {
        "key": Limits(rpm=2, tpm=50, concurrency=2, day=100),
        "team": Limits(month=150),
        "cost": 30,
        "tokens": 20,
    }
    sequence: list[dict[str, Any]] = [
        shared,
        shared,
        shared,
        {"granted": 50, "cost": 60},
        {"key": Limits(tpm=10), "tokens": 11},
    ]
    ids = [s.admit(**case)[-1] for case in sequence]
    s.settle(ids[0], cost=25, refund=5, key_tpm=50)
    s.renew(ids[1], report="r")
    s.peek(key=Limits(rpm=2, tpm=50))
    s.reconcile("key", (10, 10, 10))
    s.lapsed()
    remote_store.client.close()
    local_store.client.close()


def _flat(reply: Any) -> list[str]:
    if isinstance(reply, list | tuple):
        return [item for part in reply for item in _flat(part)]
    return [text(reply)]
