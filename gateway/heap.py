"""Keep full garbage-collector passes out of the request path's tail latency.

A web process holds ~100,000 long-lived objects once Django, the relay and their libraries
are imported. CPython's oldest generation is collected every so often as requests allocate,
and each full pass walks all of them: ~30 ms during which the event loop serves nobody, which
showed up as the p99 of time spent inside Baton under load (``make bench``, realistic phase).
Freezing the heap once start-up is done moves those objects to a permanent generation that
collections skip; garbage made while serving requests is still collected as usual.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> None:
    gc.collect()  # what start-up left behind is garbage now, not worth keeping forever
    gc.freeze()
