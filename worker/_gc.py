"""Garbage-collector tuning for the worker process (called once by the CLI, never at import).

After start-up the heap holds ~50,000 tracked objects of the imported modules (packflow,
pydantic, aiokafka, the backend's libraries). Every full collection walked all of them: 20-90 ms
each on the 2-core bench machine, a stall of the event loop, several times per second of load.
:func:`tune_gc` collects once and freezes what start-up left (frozen objects are never scanned
again), and lets the young generation hold a few batches' worth of objects before it is
collected, so most per-batch garbage (decoded records, futures, headers) dies young instead of
being promoted and scanned again by the older generations.
"""

from __future__ import annotations

import gc

__all__ = ["tune_gc"]

#: Allocations (net of deallocations) between young-generation collections; CPython's is 700.
YOUNG_THRESHOLD = 10_000


def tune_gc() -> None:
    """Freeze the start-up heap and raise the young generation's threshold."""
    gc.collect()
    gc.freeze()
    young, middle, old = gc.get_threshold()
    gc.set_threshold(max(young, YOUNG_THRESHOLD), middle, old)
