"""How the tenancy walk finds one of the victim team's objects for each URL
parameter. Add an entry when a new team-scoped page takes a new parameter."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from accounts.models import Invitation
from tests.conftest import Cast


def populate(cast: Cast) -> None:
    """Create one object of each kind for Acme (later apps add theirs here)."""


OBJECT_FOR_PARAMETER: dict[str, Callable[[Cast], Any]] = {
    "membership_id": lambda cast: cast.membership(cast.bob).pk,
    "invitation_id": lambda cast: Invitation.objects.filter(team=cast.acme).first().pk,  # type: ignore[union-attr]
}
