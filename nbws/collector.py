"""CPython's cyclic garbage collector, paused around nbws's bulk work.

Sealing a chunk, building a frame's newest rows, making the events of a slice of ``ws.messages``
and drawing the panel each make thousands of objects at once (parsed messages, the lists of
order books, events) that either die by reference counting a moment later or live on as data.
The collector frees none of them; its young collections only walk them and move them into older
generations, which then take longer to collect and bring on full collections, which walk every
object the process holds. Paused, the work makes one young collection afterwards instead
(``benchmarks/run.py``, 15,000 order-book diffs: a plain receive loop makes six full
collections, 1.1 s of its 1.6 s; nbws none). msgpack's documentation gives the same advice for
unpacking large messages.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["paused"]


@contextmanager
def paused() -> Iterator[None]:
    """The collector off for the block, and on again after it (left alone if it was off).

    ``gc.isenabled()`` is False in every thread meanwhile; if another thread turns the collector
    off during the block, it is on again after it.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()
