"""Running an aggregation again, or after it died half-way, never changes a total."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from billing import fillstate, records, rollups
from billing.models import FillState
from billing.records import bill
from billing.rollups import rollup
from tests.metering.conftest import Metered, ledger_totals, record_totals, snapshot, traffic


def test_every_task_run_twice_gives_the_same_totals(metered: Metered, month: tuple) -> None:
    start, end = month
    traffic(metered, start, end, 1500)
    at = end + timedelta(days=3)
    rollup(at)
    bill(at)
    first = snapshot()
    rollup(at)
    bill(at)
    assert snapshot() == first
    rollup(at + timedelta(minutes=1))
    bill(at + timedelta(minutes=1))
    assert snapshot() == first


def test_a_rollup_killed_mid_run_is_redone_cleanly(
    metered: Metered, month: tuple, monkeypatch: pytest.MonkeyPatch
) -> None:
    start, end = month
    traffic(metered, start, end, 1500)
    at = end + timedelta(days=1, hours=1)
    rebuild = rollups.rebuild
    calls = {"n": 0}

    def dies_on_the_tenth_step(begin: Any, finish: Any) -> int:
        calls["n"] += 1
        if calls["n"] == 10:
            raise RuntimeError("worker killed")
        return rebuild(begin, finish)

    monkeypatch.setattr(rollups, "rebuild", dies_on_the_tenth_step)
    with pytest.raises(RuntimeError):
        rollup(at)
    state = FillState.objects.get(property=fillstate.HOURLY)
    assert state.state == FillState.State.STARTED  # the crash is visible
    assert start < state.end_time < end

    monkeypatch.setattr(rollups, "rebuild", rebuild)
    rollup(at)
    state.refresh_from_db()
    assert state.state == FillState.State.DONE
    bill(at)
    crashed = snapshot()

    # The same from scratch, with nothing crashing.
    from billing.models import BillingLineItem, BillingRecord, HourlyUsage

    BillingLineItem.objects.all().delete()
    BillingRecord.objects.all().delete()
    HourlyUsage.objects.all().delete()
    FillState.objects.all().delete()
    rollup(at)
    bill(at)
    assert snapshot() == crashed
    for team in metered.teams:
        assert record_totals(team) == ledger_totals(team)


def test_closing_periods_killed_mid_run_is_redone_cleanly(
    metered: Metered, month: tuple, monkeypatch: pytest.MonkeyPatch, settings: Any
) -> None:
    settings.BATON_BILLING_PERIOD = "day"
    start, _ = month
    traffic(metered, start, start + timedelta(days=6), 800)
    at = start + timedelta(days=8)
    rollup(at)
    totals = records._Refresh.totals
    calls = {"n": 0}

    def dies_closing_the_fourth_day(self: Any, *args: Any, **kwargs: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 4:
            raise RuntimeError("worker killed")
        totals(self, *args, **kwargs)

    monkeypatch.setattr(records._Refresh, "totals", dies_closing_the_fourth_day)
    with pytest.raises(RuntimeError):
        bill(at)
    assert fillstate.end_time(fillstate.BILLED) == start + timedelta(days=3)

    monkeypatch.setattr(records._Refresh, "totals", totals)
    bill(at)
    bill(at)
    from billing.models import BillingRecord

    acme = metered.cast.acme
    days = BillingRecord.objects.filter(team=acme).order_by("period_start")
    assert [r.period_start for r in days] == [start + timedelta(days=n) for n in range(6)]
    assert all(r.status == BillingRecord.Status.CLOSED for r in days)
    for team in metered.teams:
        assert record_totals(team) == ledger_totals(team)
