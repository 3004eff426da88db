"""A usage consumer that dies: ``python -m tests.metering.consumer_probe MODE``.

``read``: reads one batch, says so, and waits to be killed (nothing written).
``commit``: writes its batch into the ledger and kills itself with SIGKILL
before acknowledging it. Either way its entries stay pending in the group.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import django


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.conf import settings

    from billing.consumer import Consumer, client

    mode = sys.argv[1]
    redis = client(settings.REDIS_URL)
    if mode == "read":
        consumer = Consumer(redis, name="probe-read", batch=int(sys.argv[2]))
        consumer.ensure_group()
        print(f"read {len(consumer.read())}", flush=True)
        time.sleep(600)
    else:

        def die(ids: list[str]) -> None:
            print(f"committed {len(ids)}", flush=True)
            os.kill(os.getpid(), signal.SIGKILL)

        # It holds the stream's lease when it dies: a short one, that the test waits out.
        consumer = Consumer(
            redis, name="probe-commit", batch=int(sys.argv[2]), before_ack=die, lease_ms=1000
        )
        consumer.run_once()


if __name__ == "__main__":
    main()
