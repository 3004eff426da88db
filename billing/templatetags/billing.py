from __future__ import annotations

from decimal import Decimal

from django import template

from accounts.models import Team
from billing.credits import Balance, balance
from billing.money import display

register = template.Library()


@register.simple_tag
def credit_balance(team: Team) -> Balance:
    """The team's live credit balance (see billing.credits.balance)."""
    return balance(team)


@register.filter
def money(amount: Decimal | None) -> str:
    """Two decimal places, more only when they matter (``billing.money.display``)."""
    return "" if amount is None else display(Decimal(amount))
