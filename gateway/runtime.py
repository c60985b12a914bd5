"""Process-wide tuning for a long-running gateway (called by `pushgate serve`).

The cyclic garbage collector is the largest cost of a busy gateway left at
Python's defaults: every message allocates objects that live a few
milliseconds (frames, events, rows), enough to be promoted out of the young
generation, and with thousands of sessions alive each full collection walks
millions of objects. Measured with `python -m bench` (5,000 devices): the
default thresholds spent 19.6 s of 31 s of CPU in 35 full collections.
So: what start-up built (modules, the API's models) is frozen out of every
collection, and young collections run after 50,000 net allocations rather
than 700. Measured with 19,000 sessions at full load: (50000, 20, 100) spends
0.6 s per 10 s in collections, (10000, 5, 100) 1.7 s with pauses of 100-200
ms at shorter intervals; both still have pauses of 0.1-0.5 s (a young
collection costs far more than its 50,000 objects suggest: an open question).
"""

from __future__ import annotations

import gc

GC_THRESHOLDS = (50_000, 20, 100)


def tune_gc() -> None:
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)
