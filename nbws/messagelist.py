"""MessageList: what ``ws.messages`` gives, a snapshot of the retained messages that makes each
``MessageEvent`` when it is read (no pandas here).

Asking for ``ws.messages`` costs nothing per message: the snapshot holds the message log's chunks
(lists that are only appended to, then sealed and never changed) and the range of each it covers.
An event is made when an index, a slice or an iteration reaches it, so ``ws.messages[-1]`` on a
capture of millions makes one event, not millions.
"""

from __future__ import annotations

import bisect
import operator
from collections.abc import Iterator, Sequence
from typing import Any, overload

from . import collector
from .events import MessageEvent, message_event

__all__ = ["MessageList"]

# A longer list shows its first and last few in its repr (a notebook cell that shows
# ws.messages must not print a million events).
SHOWN = 3


class MessageList(Sequence[MessageEvent]):
    """The retained messages when asked for, oldest first: indexing and iterating give
    ``MessageEvent``s, a slice gives a list of them, ``list(ws.messages)`` copies them all.
    Equal to a list of the same events. Messages that arrive later are not in it: ask again."""

    __slots__ = ("_ends", "_parts")

    def __init__(self, parts: list[tuple[int, Sequence[Any], Sequence[int], int, int]]) -> None:
        """``parts``: per chunk, the seq of its first message, its payloads and arrival times,
        and the range ``lo``-``hi`` of them this list covers (the chunk must not change there)."""
        self._parts = [part for part in parts if part[4] > part[3]]
        self._ends: list[int] = []
        total = 0
        for _, _, _, lo, hi in self._parts:
            total += hi - lo
            self._ends.append(total)

    def __len__(self) -> int:
        return self._ends[-1] if self._ends else 0

    @overload
    def __getitem__(self, index: int) -> MessageEvent: ...

    @overload
    def __getitem__(self, index: slice) -> list[MessageEvent]: ...

    def __getitem__(self, index: int | slice) -> MessageEvent | list[MessageEvent]:
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1:
                return [self[i] for i in range(start, stop, step)]
            return list(self._events(start, stop))
        size = len(self)
        i = operator.index(index)
        if i < 0:
            i += size
        if not 0 <= i < size:
            raise IndexError(f"message index {index} out of range: {size:,} messages are retained")
        k = bisect.bisect_right(self._ends, i)
        first_seq, data, times, lo, _ = self._parts[k]
        j = lo + i - (self._ends[k - 1] if k else 0)
        return message_event(data[j], first_seq + j, times[j])

    def __iter__(self) -> Iterator[MessageEvent]:
        for data, seqs, times in self._pieces(0, len(self)):
            yield from map(message_event, data, seqs, times)

    def _events(self, start: int, stop: int) -> list[MessageEvent]:
        """The events at positions ``start`` to ``stop - 1``, made with the collector paused."""
        events: list[MessageEvent] = []
        with collector.paused():
            for data, seqs, times in self._pieces(start, stop):
                events.extend(map(message_event, data, seqs, times))
        return events

    def _pieces(self, start: int, stop: int) -> Iterator[tuple[Sequence[Any], range, Sequence[int]]]:
        """Per chunk, the payloads, seqs and times of positions ``start`` to ``stop - 1``."""
        offset = 0
        for (first_seq, data, times, lo, hi), end in zip(self._parts, self._ends):
            a, b = max(start - offset, 0) + lo, min(stop - offset, hi - lo) + lo
            if a < b:
                yield data[a:b], range(first_seq + a, first_seq + b), times[a:b]
            if end >= stop:
                return
            offset = end

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, (MessageList, list, tuple)):
            return NotImplemented
        return len(self) == len(other) and all(a == b for a, b in zip(self, other))

    __hash__ = None  # type: ignore[assignment]  # (as a list's)

    def __repr__(self) -> str:
        size = len(self)
        if size <= 2 * SHOWN:
            return repr(list(self))
        shown = [*map(repr, self[:SHOWN]), "...", *map(repr, self[-SHOWN:])]
        return f"[{', '.join(shown)}] ({size:,} messages)"
