"""One-hour cache writes, priced and counted apart from five-minute writes.

``Price.cache_write_1h`` prices cache writes kept an hour (Anthropic: 2x the input price,
against 1.25x for five minutes); empty, they cost the ``cache_write`` price, so every
version entered before keeps its meaning. Rollups and billing line items count the
one-hour writes (``cache_write_1h_tokens``, a subset of ``cache_write_tokens``) as the
ledger has since billing 0007.

The ledger may already hold one-hour writes from before this migration: their rollups
(rebuilt whole from then on, but an hour already done is not rebuilt unless late usage
reaches it) get their count here, and billing line items of their periods the count their
rollups have, so that a late-usage adjustment never mistakes the new column for late usage.
"""

from datetime import UTC
from decimal import Decimal

import django.core.validators
from django.db import migrations, models
from django.db.models import Sum
from django.db.models.functions import TruncHour


def backfill(apps, schema_editor):
    UsageRecord = apps.get_model("billing", "UsageRecord")
    HourlyUsage = apps.get_model("billing", "HourlyUsage")
    BillingLineItem = apps.get_model("billing", "BillingLineItem")
    hours = (
        UsageRecord.objects.filter(cache_write_1h_tokens__gt=0)
        .annotate(x_hour=TruncHour("created_at", tzinfo=UTC))
        .values("x_hour", "team_id", "api_key_id", "provider", "upstream_model", "currency")
        .annotate(x_written=Sum("cache_write_1h_tokens"))
        .order_by()
    )
    for row in hours:
        HourlyUsage.objects.filter(
            hour=row["x_hour"],
            team_id=row["team_id"],
            api_key_id=row["api_key_id"],
            provider=row["provider"],
            model=row["upstream_model"],
            currency=row["currency"],
        ).update(cache_write_1h_tokens=row["x_written"])
    models_written = (
        HourlyUsage.objects.filter(cache_write_1h_tokens__gt=0)
        .values_list("team_id", "provider", "model")
        .distinct()
        .order_by()
    )
    for team_id, provider, model in models_written:
        for line in BillingLineItem.objects.filter(
            team_id=team_id, provider=provider, model=model, kind="usage"
        ):
            written = HourlyUsage.objects.filter(
                team_id=team_id,
                provider=provider,
                model=model,
                hour__gte=line.for_period_start,
                hour__lt=line.for_period_end,
            ).aggregate(total=Sum("cache_write_1h_tokens"))["total"]
            if written:
                line.cache_write_1h_tokens = written
                line.save(update_fields=["cache_write_1h_tokens"])


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0007_ledger_dialects"),
    ]

    operations = [
        migrations.AddField(
            model_name="billinglineitem",
            name="cache_write_1h_tokens",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="hourlyusage",
            name="cache_write_1h_tokens",
            field=models.BigIntegerField(default=0),
        ),
        migrations.AddField(
            model_name="price",
            name="cache_write_1h",
            field=models.DecimalField(
                blank=True,
                decimal_places=6,
                help_text="For cache writes kept an hour (Anthropic: twice the input price). "
                "Empty: the cache write price.",
                max_digits=14,
                null=True,
                validators=[django.core.validators.MinValueValidator(Decimal("0"))],
                verbose_name="1-hour cache write",
            ),
        ),
        migrations.RunPython(backfill, migrations.RunPython.noop),
    ]
