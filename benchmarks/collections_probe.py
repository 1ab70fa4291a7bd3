"""CPython's full garbage collections: a bare loop against nbws's store, in one thread.

    python benchmarks/collections_probe.py book 15000     # shapes as in run.py

The same messages, already received, go (A) through orjson into a list and then a DataFrame, and
(D) into nbws's MessageStore and then ``frame()``. Each case runs in turn, three times, after a
full collection. For each run the script prints its seconds, the number of full collections and
the seconds they took. On book diffs the bare loop spends most of its time in full collections,
which walk every ``[price, size]`` list it holds; nbws's store makes none, because it parses and
converts each chunk with the collector paused (``nbws.collector``).
"""

from __future__ import annotations

import argparse
import gc
import time

import orjson
import pandas as pd
from shapes import SHAPES

from nbws.store import MessageStore

FULL = 2  # the oldest generation: a full collection


class Collections:
    """Counts the full collections and their seconds (a ``gc.callbacks`` entry)."""

    def __init__(self) -> None:
        self.count, self.seconds, self._start = 0, 0.0, 0.0

    def __call__(self, phase: str, info: dict) -> None:
        if info["generation"] != FULL:
            return
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.count += 1
            self.seconds += time.perf_counter() - self._start


def bare_loop(messages: list[str]) -> pd.DataFrame:
    return pd.DataFrame([orjson.loads(message) for message in messages])


def store(messages: list[str]) -> pd.DataFrame:
    s = MessageStore()
    for i, message in enumerate(messages):
        s.append(message, i)
    return s.frame()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("shape", choices=list(SHAPES))
    parser.add_argument("count", type=int)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    messages = [bytes(m).decode() for m in SHAPES[args.shape](args.count)]
    cases = {
        "A  bare loop": lambda: bare_loop(messages),
        "D  nbws store": lambda: store(messages),
    }
    store(messages[:10])  # imports pandas' and pyarrow's lazy parts before the first timing
    collections = Collections()
    gc.callbacks.append(collections)
    for _ in range(args.rounds):
        for name, case in cases.items():
            gc.collect()
            collections.count, collections.seconds = 0, 0.0
            start = time.perf_counter()
            frame = case()
            gc.collect(1)  # as in run.py: each case pays for walking what it left young
            seconds = time.perf_counter() - start
            assert len(frame) == len(messages), f"{name}: {len(frame)} rows"
            del frame
            print(
                f"{name:<36} {seconds:.3f} s, {collections.count} full collections "
                f"taking {collections.seconds:.3f} s"
            )
    gc.callbacks.remove(collections)


if __name__ == "__main__":
    main()
