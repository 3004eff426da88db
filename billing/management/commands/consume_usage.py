"""``manage.py consume_usage``: a dedicated process moving usage events from
the Redis streams into the ledger (``billing.consumer``), as an alternative or
a complement to the ``billing.consume_usage`` Celery task. Run as many as you
like, up to one per stream (``BATON_USAGE_STREAMS``): they share the streams
by leases. SIGTERM or Ctrl-C stops it after the batch in hand is written and
acknowledged, and gives its streams back at once.
"""

from __future__ import annotations

import logging
import signal
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError

from billing.consumer import BATCH, Consumer, Result, client, default_name
from billing.partitions import ensure as ensure_partitions

log = logging.getLogger("baton.metering")
RETRY_SECONDS = 2.0


class Command(BaseCommand):
    help = "Read usage events from the Redis streams into the ledger until stopped."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--once", action="store_true", help="Drain the stream, then exit.")
        parser.add_argument("--batch", type=int, default=BATCH, help="Events per batch.")
        parser.add_argument("--name", default="", help="Consumer name (default: host-pid).")
        parser.add_argument(
            "--block-ms", type=int, default=2000, help="How long one read waits for new events."
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.REDIS_URL:
            raise CommandError(
                "REDIS_URL is not set: without Redis the relay writes usage straight "
                "into the ledger and there is nothing to consume."
            )
        try:
            ensure_partitions()  # today's and the week ahead, before the first batch
        except DatabaseError:
            log.exception("could not create the ledger's partitions ahead")
        consumer = Consumer(
            client(settings.REDIS_URL),
            name=options["name"] or default_name(),
            batch=max(1, options["batch"]),
        )
        if options["once"]:
            result = consumer.drain(seconds=3600)
            self.report(result)
            return
        stopping = False

        def stop(signum: int, frame: Any) -> None:
            nonlocal stopping
            stopping = True

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        total = Result()
        while not stopping:
            try:
                total.add(consumer.run_once(block_ms=options["block_ms"]))
            except Exception:
                # The database or Redis is away: what was read stays pending
                # and is claimed again once it has been idle long enough.
                log.exception("consuming usage failed; retrying in %s s", RETRY_SECONDS)
                time.sleep(RETRY_SECONDS)
        consumer.leave()
        self.report(total)

    def report(self, result: Result) -> None:
        self.stdout.write(
            f"{result.read} read, {result.claimed} claimed from other consumers, "
            f"{result.written} written, {result.dead} not usage events"
        )
