"""Seed the price catalog with list prices per 1M tokens, as each provider's
pricing page gave them in mid-2026 (docs/providers.md lists the pages; Zhipu's
GLM-4.5 and Moonshot's kimi-k2.6 figures came from third-party listings).
Operators add new versions in the admin; these rows only give a fresh install
sensible defaults.

Anthropic's cached input is 0.1x and its 5-minute cache write 1.25x the input
price (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching);
Zhipu bills cache hits at 1/5. An empty cached or cache-write price means
"same as input".
"""

from datetime import datetime, timezone
from decimal import Decimal

from django.db import migrations

EFFECTIVE = datetime(2025, 1, 1, tzinfo=timezone.utc)
NOTE = "list price from the provider's pricing page (mid-2026)"

# provider, model, input, cached input, cache write, output, currency
PRICES = [
    ("openai", "gpt-4o", "2.50", None, None, "10", "USD"),
    ("openai", "gpt-4o-mini", "0.15", None, None, "0.60", "USD"),
    ("openai", "gpt-5", "1.25", None, None, "10", "USD"),
    ("anthropic", "claude-sonnet-4-5", "3", "0.30", "3.75", "15", "USD"),
    ("anthropic", "claude-opus-4-1", "15", "1.50", "18.75", "75", "USD"),
    ("anthropic", "claude-haiku-4-5", "1", "0.10", "1.25", "5", "USD"),
    ("gemini", "gemini-2.5-pro", "1.25", None, None, "10", "USD"),
    ("gemini", "gemini-2.5-flash", "0.30", None, None, "2.50", "USD"),
    ("qwen", "qwen3-max", "2.5", "0.5", None, "10", "CNY"),
    ("qwen", "qwen-flash", "0.15", None, None, "1.5", "CNY"),
    ("zhipu", "glm-4.5", "0.60", "0.12", None, "2.20", "USD"),
    ("moonshot", "kimi-k2.5", "0.60", "0.10", None, "3.00", "USD"),
    ("moonshot", "kimi-k2.6", "0.95", "0.16", None, "4.00", "USD"),
    ("deepseek", "deepseek-v4-flash", "0.14", "0.0028", None, "0.28", "USD"),
    ("deepseek", "deepseek-v4-pro", "1.74", "0.0145", None, "3.48", "USD"),
    # deepseek-chat / deepseek-reasoner are v4-flash until their retirement.
    ("deepseek", "deepseek-chat", "0.14", "0.0028", None, "0.28", "USD"),
    ("deepseek", "deepseek-reasoner", "0.14", "0.0028", None, "0.28", "USD"),
]


def _decimal(value):
    return None if value is None else Decimal(value)


def seed(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    Provider = apps.get_model("relay", "Provider")
    ExchangeRate = apps.get_model("billing", "ExchangeRate")
    known = set(Provider.objects.values_list("slug", flat=True))
    for provider, model, input_, cached, write, output, currency in PRICES:
        if provider not in known:
            continue
        Price.objects.get_or_create(
            provider_id=provider,
            model=model,
            effective_from=EFFECTIVE,
            defaults={
                "input": Decimal(input_),
                "cached_input": _decimal(cached),
                "cache_write": _decimal(write),
                "output": Decimal(output),
                "currency": currency,
                "note": NOTE,
            },
        )
    # A starting point so USD teams can pay for CNY-priced models and the
    # other way round; the operator keeps it current in the admin.
    ExchangeRate.objects.get_or_create(
        base="USD", quote="CNY", effective_from=EFFECTIVE, defaults={"rate": Decimal("7.10")}
    )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0002_limits_credits_prices"),
        ("relay", "0002_seed_provider_catalog"),
    ]

    operations = [migrations.RunPython(seed, migrations.RunPython.noop)]
