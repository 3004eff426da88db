"""The markers of how far each periodic aggregation has got (``FillState``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from billing.models import FillState

# Hours of the ledger rolled up: DONE up to end_time; STARTED while a step
# beyond end_time is being written (a crash there is redone by the next run).
HOURLY = "usage-hourly"
# Ledger rows ingested before end_time (less a margin) were checked for hours
# that had already been rolled up.
LATE = "usage-late"
# Ledger rows that ran before end_time have been pruned: hours before it can
# no longer be recomputed, and events that old are booked at end_time.
PRUNED = "ledger-pruned"
# Billing periods are closed into records up to end_time.
BILLED = "billing-closed"
# Rollups computed before end_time (less a margin) were checked for changes
# to periods that had already closed.
BILLING_SEEN = "billing-seen"


def get(name: str) -> FillState | None:
    return FillState.objects.filter(property=name).first()


def get_or_start(name: str, default: Callable[[], datetime]) -> FillState:
    state = get(name)
    if state is None:
        state, _ = FillState.objects.get_or_create(
            property=name, defaults={"end_time": default(), "state": FillState.State.DONE}
        )
    return state


def lock(name: str) -> FillState | None:
    """The marker, locked until the transaction ends: runs of the same work serialize on it."""
    return FillState.objects.select_for_update().filter(property=name).first()


def mark(state: FillState, end_time: datetime, done: bool) -> None:
    state.end_time = end_time
    state.state = FillState.State.DONE if done else FillState.State.STARTED
    state.save(update_fields=["end_time", "state", "last_modified"])


def end_time(name: str) -> datetime | None:
    return FillState.objects.filter(property=name).values_list("end_time", flat=True).first()
