"""The price catalog of the 2026 model generation, with one-hour cache writes priced.

List prices per 1M tokens, in each provider's currency, as their pricing pages give them:

- Anthropic: https://platform.claude.com/docs/en/about-claude/pricing and the model
  overview https://platform.claude.com/docs/en/models (Fable 5.1 $10 in / $50 out,
  Opus 5.5 $4 / $20, Sonnet 5.5 $2 / $10, Haiku 5.5 $0.10 / $0.50, Opus 5 $5 / $25, see
  https://platform.claude.com/docs/about-claude/models/whats-new-opus-5). Prompt caching
  (https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching): a cache read costs
  0.1x the input price, a five-minute cache write 1.25x and a one-hour write 2x. The
  Claude 4 models seeded by billing 0003 gain their one-hour write price the same way.
- DeepSeek: https://api-docs.deepseek.com/quick_start/pricing (USD; cache miss, cache hit,
  output): deepseek-v4-flash $0.14 / $0.0028 / $0.28, deepseek-v4-pro list
  $1.74 / $0.0145 / $3.48 (a promotional discount is not a list price and is left out).
- Moonshot: kimi-k2.6 $0.95 miss / $0.16 hit / $4.00 out (USD), from a third-party listing:
  https://platform.moonshot.ai/docs/pricing/chat did not confirm it.
- Qwen (Alibaba Model Studio, https://www.alibabacloud.com/help/en/model-studio/models):
  qwen3-max is priced in tiers by input length; the catalog keeps one price per model, so
  this is the mainland-China tier for inputs up to 32K tokens (CNY 2.5 in, 10 out, 0.5 a
  cache hit) and longer prompts are billed at it too.

Only missing versions are added; nothing is edited. A model gets a version when it has no
price yet, or when every version it has is one of billing 0003's seeds, unchanged, whose
figures differ from the ones below (the Claude 4 models, which lacked the one-hour write).
A model an operator priced (a version of their own, or a seed they edited) is left alone.
"""

import importlib
from datetime import datetime, timezone
from decimal import Decimal

from django.db import migrations

EFFECTIVE = datetime(2026, 1, 1, tzinfo=timezone.utc)
SEEDS = importlib.import_module("billing.migrations.0003_seed_prices")

ANTHROPIC_NOTE = "list price (platform.claude.com pricing); cache read 0.1x, 5-min write 1.25x, 1-hour write 2x input"
DEEPSEEK_NOTE = "list price, USD (api-docs.deepseek.com pricing): cache miss / cache hit / output"
MOONSHOT_NOTE = "third-party listing, USD (not confirmed by Moonshot's pricing page): miss / hit / output"
QWEN_NOTE = (
    "CN list price, tier of inputs up to 32K tokens: the catalog holds one tier per model, "
    "so longer prompts are billed at this tier"
)


def _anthropic(model, input_, output):
    input_ = Decimal(input_)
    return (
        "anthropic",
        model,
        input_,
        input_ * Decimal("0.1"),
        input_ * Decimal("1.25"),
        input_ * 2,
        Decimal(output),
        "USD",
        ANTHROPIC_NOTE,
    )


def _plain(provider, model, input_, cached, output, currency, note):
    return (provider, model, Decimal(input_), Decimal(cached), None, None, Decimal(output), currency, note)


# provider, model, input, cached input, cache write (5 min), cache write (1 h), output,
# currency, note
PRICES = [
    _anthropic("claude-fable-5-1", "10", "50"),
    _anthropic("claude-opus-5-5", "4", "20"),
    _anthropic("claude-sonnet-5-5", "2", "10"),
    _anthropic("claude-haiku-5-5", "0.10", "0.50"),
    _anthropic("claude-opus-5", "5", "25"),
    _anthropic("claude-sonnet-4-5", "3", "15"),
    _anthropic("claude-opus-4-1", "15", "75"),
    _anthropic("claude-haiku-4-5", "1", "5"),
    _plain("deepseek", "deepseek-v4-flash", "0.14", "0.0028", "0.28", "USD", DEEPSEEK_NOTE),
    _plain("deepseek", "deepseek-v4-pro", "1.74", "0.0145", "3.48", "USD", DEEPSEEK_NOTE),
    _plain("moonshot", "kimi-k2.6", "0.95", "0.16", "4.00", "USD", MOONSHOT_NOTE),
    _plain("qwen", "qwen3-max", "2.5", "0.5", "10", "CNY", QWEN_NOTE),
]


def _figures(price):
    return (
        price.input,
        price.cached_input,
        price.cache_write,
        price.cache_write_1h,
        price.output,
        price.currency,
    )


def _dec(value):
    return None if value is None else Decimal(value)


SEEDED = {
    (provider, model): (_dec(input_), _dec(cached), _dec(write), None, _dec(output), currency)
    for provider, model, input_, cached, write, output, currency in SEEDS.PRICES
}


def _untouched_seed(price):
    return price.effective_from == SEEDS.EFFECTIVE and SEEDED.get(
        (price.provider_id, price.model)
    ) == _figures(price)


def add_missing(apps, schema_editor):
    Price = apps.get_model("billing", "Price")
    Provider = apps.get_model("relay", "Provider")
    known = set(Provider.objects.values_list("slug", flat=True))
    for provider, model, input_, cached, write, write_1h, output, currency, note in PRICES:
        if provider not in known:
            continue
        versions = list(
            Price.objects.filter(provider_id=provider, model=model).order_by("-effective_from")
        )
        wanted = (input_, cached, write, write_1h, output, currency)
        if versions and (
            not all(_untouched_seed(version) for version in versions)
            or _figures(versions[0]) == wanted
        ):
            continue
        if any(version.effective_from == EFFECTIVE for version in versions):
            continue
        Price.objects.create(
            provider_id=provider,
            model=model,
            input=input_,
            cached_input=cached,
            cache_write=write,
            cache_write_1h=write_1h,
            output=output,
            currency=currency,
            effective_from=EFFECTIVE,
            note=note,
        )


class Migration(migrations.Migration):
    dependencies = [
        ("billing", "0008_one_hour_cache_writes"),
        ("relay", "0002_seed_provider_catalog"),
    ]

    operations = [migrations.RunPython(add_missing, migrations.RunPython.noop)]
