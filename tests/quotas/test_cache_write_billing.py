"""A Messages request with one-hour and five-minute cache writes, through a running Baton to
the fake's Anthropic, is billed once, with every token class at its own price: the ledger,
the admission's settled spend, the credit debit, the rollup and the billing record agree
to the nano with the cost worked out here from the usage the client was shown."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import ROUND_CEILING, Decimal
from typing import Any

import anthropic
from django.utils import timezone

from billing.ledger import ingest
from billing.models import (
    BillingLineItem,
    CreditEntry,
    HourlyUsage,
    Price,
    UsageRecord,
)
from billing.records import bill
from billing.rollups import rollup
from billing.usage import charge_usage
from tests.quotas.conftest import Quota
from tests.relay.conftest import make_credential, make_route
from tests.relay.test_relay_sdk import usage_events

# Claude Opus 5's list price per 1M tokens (USD): input, cache read 0.1x, five-minute
# write 1.25x, one-hour write 2x, output.
OPUS_5 = {
    "input": Decimal(5),
    "cached_input": Decimal("0.50"),
    "cache_write": Decimal("6.25"),
    "cache_write_1h": Decimal(10),
    "output": Decimal(25),
}
MILLION = Decimal(1_000_000)
NANO = Decimal("0.000000001")


def expected_cost(usage: Any) -> Decimal:
    """What the client's usage costs at OPUS_5, from Anthropic's own fields."""
    split = usage.cache_creation
    written_1h = split.ephemeral_1h_input_tokens
    written_5m = split.ephemeral_5m_input_tokens
    assert written_1h + written_5m == usage.cache_creation_input_tokens
    total = (
        usage.input_tokens * OPUS_5["input"]
        + usage.cache_read_input_tokens * OPUS_5["cached_input"]
        + written_5m * OPUS_5["cache_write"]
        + written_1h * OPUS_5["cache_write_1h"]
        + usage.output_tokens * OPUS_5["output"]
    )
    return (total / MILLION).quantize(NANO, rounding=ROUND_CEILING)


def test_one_hour_cache_writes_are_billed_once_at_their_own_price(
    quota: Quota, redis_client: Any
) -> None:
    Price.objects.create(
        provider_id="anthropic",
        model="claude-opus-5",
        effective_from=timezone.now() - timedelta(minutes=1),
        **OPUS_5,
    )
    native = make_credential(
        quota.team, "claude", quota.fake.base_url + "/anthropic/v1", provider="anthropic"
    )
    make_route(quota.team, "opus", (native, "claude-opus-5", 0))
    # The fake keeps a prompt cache for the whole session: a prompt of its own writes first.
    system: Any = [
        {
            "type": "text",
            "text": f"You review invoices {uuid.uuid4().hex} line by line, to the cent.",
            "cache_control": {"type": "ephemeral", "ttl": "1h"},
        }
    ]

    def turn(text: str) -> Any:
        return [
            {
                "role": "user",
                "content": [
                    {
                        "type": "text",
                        "text": f"Here is the invoice {text} with its many lines of detail",
                        "cache_control": {"type": "ephemeral"},
                    },
                    {"type": "text", "text": "What is wrong with it?"},
                ],
            }
        ]

    with quota.serve() as base:
        sdk = anthropic.Anthropic(base_url=base, api_key=quota.key, max_retries=0)
        first = sdk.messages.create(
            model="opus", max_tokens=32, system=system, messages=turn("from March")
        )
        with sdk.messages.stream(
            model="opus", max_tokens=32, system=system, messages=turn("from April")
        ) as stream:
            second = stream.get_final_message()
        events = usage_events(redis_client, 2)
        rows = quota.ledger(expected=2)

    # The first turn writes the system prompt for an hour and the invoice for five minutes;
    # the second reads the system prompt back and writes its own invoice for five minutes.
    once: Any = first.usage  # the SDK types the cache fields as optional: they are here
    again: Any = second.usage
    assert once.cache_creation.ephemeral_1h_input_tokens > 0
    assert once.cache_creation.ephemeral_5m_input_tokens > 0
    assert once.input_tokens > 0 and once.cache_read_input_tokens == 0
    assert again.cache_read_input_tokens > 0
    assert again.cache_creation.ephemeral_1h_input_tokens == 0
    assert again.cache_creation.ephemeral_5m_input_tokens > 0

    assert len(rows) == 2
    for row, usage, streamed in ((rows[0], once, False), (rows[1], again, True)):
        assert (row.dialect, row.egress, row.streamed, row.estimated) == (
            "messages",
            "messages",
            streamed,
            False,
        )
        assert row.upstream_model == "claude-opus-5" and row.status == 200
        split = usage.cache_creation
        assert (
            row.prompt_tokens,
            row.cached_tokens,
            row.cache_write_tokens,
            row.cache_write_1h_tokens,
            row.cache_write_5m_tokens,
            row.completion_tokens,
        ) == (
            usage.input_tokens + usage.cache_read_input_tokens + usage.cache_creation_input_tokens,
            usage.cache_read_input_tokens,
            usage.cache_creation_input_tokens,
            split.ephemeral_1h_input_tokens,
            split.ephemeral_5m_input_tokens,
            usage.output_tokens,
        )
        assert row.cost == expected_cost(usage)
        assert row.unpriced is False and row.price is not None
    costs = [row.cost for row in rows]
    assert costs[0] is not None and costs[1] is not None
    total = costs[0] + costs[1]
    assert total > 0

    # The relay's own settlement counted exactly what the ledger priced.
    assert quota.settled(total) == total

    # Billed once: the same events again (a replayed stream) add nothing, and the credit
    # debit covers each row once however often charging runs.
    ingest(events)
    assert list(
        UsageRecord.objects.filter(team=quota.team)
        .order_by("created_at", "id")
        .values_list("cost", flat=True)
    ) == [
        rows[0].cost,
        rows[1].cost,
    ]
    charge_usage()
    charge_usage()
    debits = CreditEntry.objects.filter(team=quota.team, kind=CreditEntry.Kind.USAGE)
    assert sum(entry.amount for entry in debits) == -total
    assert not UsageRecord.objects.filter(team=quota.team, credit_entry=None).exists()

    # Rollups and the billing record carry the classes and the same money.
    rollup()
    rollup()  # rebuilding changes nothing
    hour = HourlyUsage.objects.get(team=quota.team, model="claude-opus-5")
    assert (hour.requests, hour.cost) == (2, total)
    assert hour.cache_write_1h_tokens == rows[0].cache_write_1h_tokens
    assert (
        hour.cache_write_5m_tokens == rows[0].cache_write_5m_tokens + rows[1].cache_write_5m_tokens
    )
    assert hour.cached_tokens == rows[1].cached_tokens
    bill()
    line = BillingLineItem.objects.get(team=quota.team, model="claude-opus-5")
    assert (line.amount, line.requests) == (total, 2)
    assert (line.cache_write_tokens, line.cache_write_1h_tokens) == (
        hour.cache_write_tokens,
        hour.cache_write_1h_tokens,
    )
