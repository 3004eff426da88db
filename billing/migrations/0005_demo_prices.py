"""The built-in demo upstream's models cost nothing: give them a zero price.

Without a price they were served as "unpriced", which logs a warning from the relay and
another from the ledger for every demo request, and flags each row for the operator.
Every model of every demo provider in the catalog gets a zero USD price (effective from the
same date as the seeded list prices), unless the operator already priced it.
"""

from datetime import datetime, timezone
from decimal import Decimal

from django.db import migrations

EFFECTIVE = datetime(2025, 1, 1, tzinfo=timezone.utc)
NOTE = "the built-in demo upstream: free"


def seed(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    Provider = apps.get_model("relay", "Provider")
    for provider in Provider.objects.filter(is_demo=True):
        for model in [*provider.known_models, *provider.embedding_models]:
            if Price.objects.filter(provider=provider, model=model).exists():
                continue
            Price.objects.create(
                provider=provider,
                model=model,
                input=Decimal(0),
                output=Decimal(0),
                currency="USD",
                effective_from=EFFECTIVE,
                note=NOTE,
            )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0004_metering"),
        # The demo provider row exists (whatever the settings) from relay 0004 on.
        ("relay", "0004_demo_provider_address_at_run_time"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
