"""The admission script itself, on Redis and in process: the same cases, the same answers.

These drive ``billing/quota/admission.lua`` with identical KEYS and ARGV on a real
Redis (through redis-py) and on the embedded default's in-process store
(``billing/quota/local.py``: the same script on lupa's Lua 5.1).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from django.conf import settings

from billing.quota.local import LocalLimits
from billing.quota.script import LUA, credential_keys, periods, scope_keys
from config.redis_clients import sync_client

Run = Callable[[list[str], list[Any]], list[Any]]
NONE = [-1] * 6
WINDOW = 60_000


@pytest.fixture(params=["redis", "local"])
def run(request: pytest.FixtureRequest) -> Iterator[Run]:
    if request.param == "local":
        yield LocalLimits(LUA).run
        return
    client = sync_client(settings.REDIS_URL)
    client.flushdb()
    script = client.register_script(LUA)
    yield lambda keys, args: script(keys=keys, args=args)
    client.close()


def text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class Scopes:
    """The keys of one team and one of its API keys."""

    def __init__(self) -> None:
        self.team = str(uuid.uuid4())
        day, month = periods()
        self.keys = scope_keys(self.team, "t", day, month) + scope_keys(
            self.team, "k:key", day, month
        )

    def admit(
        self,
        run: Run,
        *,
        team: list[int] = NONE,
        key: list[int] = NONE,
        cost: int = 0,
        tokens: int = 1,
        ttl: int = 60_000,
        prepaid: bool = False,
        granted: int = 0,
        credentials: list[tuple[str, int, int]] | None = None,
        all_limited: bool = False,
        hold: str | None = None,
    ) -> list[Any]:
        hold = hold or uuid.uuid4().hex
        cred_keys: list[str] = []
        cred_args: list[int] = []
        for credential_id, rpm, tpm in credentials or []:
            cred_keys += credential_keys(self.team, credential_id)
            cred_args += [rpm, tpm]
        args = ["admit", hold, ttl, cost, tokens, WINDOW, int(prepaid), granted]
        args += [len(credentials or []), int(all_limited), *team, *key, *cred_args]
        reply = run(self.keys + cred_keys, args)
        reply.append(hold)
        return reply

    def settle(
        self, run: Run, hold: str, cost: int = 0, refund: int = 0, tpm: tuple[int, int] = (-1, -1)
    ) -> None:
        run(self.keys, ["settle", hold, cost, refund, WINDOW, 86400, 86400 * 31, *tpm])

    def peek(
        self, run: Run, rpm: tuple[int, int] = (-1, -1), tpm: tuple[int, int] = (-1, -1)
    ) -> list[Any]:
        return [text(v) for v in run(self.keys, ["peek", WINDOW, rpm[0], tpm[0], rpm[1], tpm[1]])]


def limits(
    rpm: int = -1, tpm: int = -1, conc: int = -1, day: int = -1, month: int = -1, life: int = -1
) -> list[int]:
    return [rpm, tpm, conc, day, month, life]


def test_requests_per_minute_is_a_bucket_of_the_limit(run: Run) -> None:
    s = Scopes()
    replies = [s.admit(run, key=limits(rpm=3)) for _ in range(4)]
    assert [int(r[0]) for r in replies] == [1, 1, 1, 0]
    refused = replies[3]
    assert (text(refused[1]), int(refused[2]), int(refused[3])) == ("requests", 2, 3)
    # About a third of the window until one request is back.
    assert 19_000 <= int(refused[5]) <= 20_100
    # The success replies carry the headers: key requests limit 3, remaining 2, 1, 0.
    assert [int(r[7]) for r in replies[:3]] == [3, 3, 3]
    assert [int(r[8]) for r in replies[:3]] == [2, 1, 0]


def test_the_team_limit_binds_every_key(run: Run) -> None:
    s = Scopes()
    assert int(s.admit(run, team=limits(rpm=1))[0]) == 1
    refused = s.admit(run, team=limits(rpm=1))
    assert (int(refused[0]), text(refused[1]), int(refused[2])) == (0, "requests", 1)


def test_tokens_per_minute_reserves_and_refunds(run: Run) -> None:
    s = Scopes()
    first = s.admit(run, key=limits(tpm=100), tokens=80)
    assert int(first[0]) == 1
    refused = s.admit(run, key=limits(tpm=100), tokens=30)
    assert (text(refused[1]), int(refused[6])) == ("tokens", 30)
    # The first request used only 20 of its 80: the rest comes back.
    s.settle(run, first[-1], refund=60, tpm=(-1, 100))
    assert int(s.admit(run, key=limits(tpm=100), tokens=30)[0]) == 1


def test_a_request_larger_than_the_tokens_limit_can_never_pass(run: Run) -> None:
    refused = Scopes().admit(run, key=limits(tpm=100), tokens=101)
    assert (text(refused[1]), int(refused[3]), int(refused[4])) == ("too_large", 100, 101)


def test_concurrency_counts_requests_in_flight(run: Run) -> None:
    s = Scopes()
    first, second = (s.admit(run, key=limits(conc=2)) for _ in range(2))
    assert int(first[0]) == int(second[0]) == 1
    refused = s.admit(run, key=limits(conc=2))
    assert (text(refused[1]), int(refused[3]), int(refused[4])) == ("concurrency", 2, 2)
    s.settle(run, first[-1])
    assert int(s.admit(run, key=limits(conc=2))[0]) == 1


def test_budget_counts_holds_then_spend(run: Run) -> None:
    s = Scopes()
    a, b = (s.admit(run, key=limits(day=100), cost=40) for _ in range(2))
    assert int(a[0]) == int(b[0]) == 1
    held = s.admit(run, key=limits(day=100), cost=40)
    # Refused while 80 is held, but not for good: "hard" is 0.
    assert (text(held[1]), int(held[2]), int(held[3]), int(held[4]), int(held[6])) == (
        "budget",
        2,
        1,
        100,
        0,
    )
    s.settle(run, a[-1], cost=40)
    s.settle(run, b[-1], cost=40)
    spent = s.admit(run, key=limits(day=100), cost=40)
    assert (text(spent[1]), int(spent[5]), int(spent[6])) == ("budget", 80, 1)
    assert int(s.admit(run, key=limits(day=100), cost=20)[0]) == 1


def test_a_zero_budget_refuses_even_free_requests(run: Run) -> None:
    refused = Scopes().admit(run, team=limits(month=0), cost=0)
    assert (text(refused[1]), int(refused[2]), int(refused[3])) == ("budget", 1, 2)


def test_prepaid_credit_is_granted_minus_lifetime_spend(run: Run) -> None:
    s = Scopes()
    first = s.admit(run, prepaid=True, granted=100, cost=60)
    assert int(first[0]) == 1
    s.settle(run, first[-1], cost=90)  # cost more than estimated
    refused = s.admit(run, prepaid=True, granted=100, cost=20)
    assert (text(refused[1]), int(refused[4]), int(refused[6])) == ("credit", 10, 1)
    assert int(s.admit(run, prepaid=True, granted=120, cost=20)[0]) == 1  # after a top-up
    empty = Scopes().admit(run, prepaid=True, granted=0, cost=0)
    assert text(empty[1]) == "credit"


def test_a_hold_left_behind_expires_and_frees_everything(run: Run) -> None:
    s = Scopes()
    assert int(s.admit(run, key=limits(conc=1, day=100), cost=100, ttl=200)[0]) == 1
    assert text(s.admit(run, key=limits(conc=1, day=100), cost=100)[1]) == "budget"
    time.sleep(0.3)
    assert int(s.admit(run, key=limits(conc=1, day=100), cost=100)[0]) == 1
    in_flight, held = s.peek(run)[7:9]
    assert (in_flight, held) == ("1", "100")


def test_settling_twice_or_after_expiry_releases_nothing_more(run: Run) -> None:
    s = Scopes()
    a = s.admit(run, team=limits(day=100), cost=50, ttl=100)
    time.sleep(0.2)
    s.admit(run, team=limits(day=100), cost=30)  # prunes the expired hold
    s.settle(run, a[-1], cost=10)
    s.settle(run, a[-1], cost=0)
    peek = s.peek(run)
    assert peek[:2] == ["1", "30"] and peek[4] == "10"


def test_spend_lands_on_day_month_and_lifetime_of_both_scopes(run: Run) -> None:
    s = Scopes()
    a = s.admit(run)
    s.settle(run, a[-1], cost=123)
    peek = s.peek(run)
    assert peek[4:7] == ["123"] * 3 and peek[11:14] == ["123"] * 3


def test_credentials_are_a_soft_limit(run: Run) -> None:
    s = Scopes()
    # Credential "c1" has spent its request (accounted at settle).
    keys = credential_keys(s.team, "c1")
    run(s.keys + keys, ["settle", "x", 0, 0, WINDOW, 1, 1, -1, -1, 1, -1, 5])
    mixed = s.admit(run, credentials=[("c1", 1, -1), ("c2", 5, -1)], all_limited=True)
    assert int(mixed[0]) == 1 and int(mixed[13]) == 1 and 50_000 < int(mixed[14]) <= 60_000
    only = s.admit(run, credentials=[("c1", 1, -1)], all_limited=True)
    assert (int(only[0]), text(only[1])) == (0, "credential")
    # With an unlimited target besides it, the request goes ahead.
    assert int(s.admit(run, credentials=[("c1", 1, -1)], all_limited=False)[0]) == 1


def test_seeding_adds_the_ledger_once(run: Run) -> None:
    s = Scopes()
    counters = [s.keys[4], s.keys[6]]
    probe = [text(v) for v in run(counters, ["probe"])]
    assert probe == ["0", "0", "0", "0"]
    run(counters, ["seed", 500, 86400, 700, 0])
    run(counters, ["seed", 500, 86400, 700, 0])
    assert s.peek(run)[4] == "500" and s.peek(run)[6] == "700"
    assert [text(v) for v in run(counters, ["probe"])][0::2] == ["1", "1"]


def test_both_stores_answer_alike() -> None:
    """One scripted sequence, compared reply by reply (timings aside): the
    in-process store runs the script as Redis does."""
    client = sync_client(settings.REDIS_URL)
    client.flushdb()
    script = client.register_script(LUA)
    local = LocalLimits(LUA)
    s = Scopes()

    def both(keys: list[str], args: list[Any]) -> list[Any]:
        remote = [text(v) for v in script(keys=keys, args=args)]
        here = [text(v) for v in local.run(keys, args)]
        assert len(remote) == len(here), (args, remote, here)
        for a, b in zip(remote, here, strict=True):
            if a.lstrip("-").isdigit() and b.lstrip("-").isdigit():
                assert abs(int(a) - int(b)) <= 60, (args, remote, here)  # reset times move
            else:
                assert a == b, (args, remote, here)
        return remote

    shared: dict[str, Any] = {
        "key": limits(rpm=2, tpm=50, conc=2, day=100),
        "team": limits(month=150),
        "cost": 30,
        "tokens": 20,
    }
    sequence: list[dict[str, Any]] = [
        shared,
        shared,
        shared,
        {"prepaid": True, "granted": 50, "cost": 60},
        {"key": limits(tpm=10), "tokens": 11},
    ]
    holds = []
    for case in sequence:
        holds.append(s.admit(both, **case)[-1])
    s.settle(both, holds[0], cost=25, refund=5, tpm=(-1, 50))
    s.peek(both, rpm=(-1, 2), tpm=(-1, 50))
    client.close()
