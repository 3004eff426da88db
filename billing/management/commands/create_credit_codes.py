"""``manage.py create_credit_codes --count 50 --amount 10 --currency USD --days 90``

Prints the codes, one per line: the only time they exist in clear.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from billing.credits import CreditError, generate_codes
from billing.models import Currency


class Command(BaseCommand):
    help = "Generate a batch of prepaid credit codes and print them once."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--count", type=int, default=1)
        parser.add_argument("--amount", required=True, help="What each code is worth, e.g. 10.00")
        parser.add_argument("--currency", default=Currency.USD, choices=Currency.values)
        parser.add_argument("--days", type=int, default=90, help="Days until the codes expire.")
        parser.add_argument("--batch", default="", help="A name to find the batch by in the admin.")

    def handle(self, *args: Any, **options: Any) -> None:
        try:
            amount = Decimal(options["amount"])
        except InvalidOperation as exc:
            raise CommandError(
                f"--amount must be a decimal amount, got {options['amount']!r}"
            ) from exc
        if options["days"] < 1:
            raise CommandError("--days must be at least 1")
        try:
            codes = generate_codes(
                options["count"],
                amount,
                options["currency"],
                timezone.now() + timedelta(days=options["days"]),
                batch=options["batch"],
            )
        except CreditError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write("\n".join(codes))
