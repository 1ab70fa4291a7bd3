"""The four event types a WebSocket dispatches, as in the browser's WebSocket API."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from .errors import JSONDecodeError

__all__ = [
    "OpenEvent",
    "MessageEvent",
    "CloseEvent",
    "ErrorEvent",
    "Event",
    "loads",
    "fast_loads",
]

try:  # orjson is a dependency; the fallback keeps a broken install usable.
    from orjson import loads as fast_loads
except ImportError:  # pragma: no cover
    fast_loads = json.loads


def loads(data: str | bytes) -> Any:
    """Parse JSON like ``JSON.parse``; raises ``ValueError`` (``json.JSONDecodeError`` mostly).

    orjson first (fast); the standard library second, so that what Python servers often send
    (``NaN``) still parses. Values nested deeper than ``MAX_DEPTH`` levels are refused by both.
    """
    try:
        return fast_loads(data)
    except ValueError as exc:
        if not _too_deep(exc):
            try:
                value = json.loads(data)
            except RecursionError:
                value = None
            else:
                if not _deeper_than(value, MAX_DEPTH):
                    return value
        raise ValueError(f"nested too deeply to parse (more than {MAX_DEPTH:,} levels)") from None


# orjson's limit, kept for the standard library's results too: deeper values make pandas crawl,
# recursive code overflow, and Arrow's JSON reader crash.
MAX_DEPTH = 1024


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``value`` (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep(exc: ValueError) -> bool:
    """Whether orjson refused a value for its nesting (the standard library would recurse on)."""
    return "depth limit" in str(exc) or "ecursion" in str(exc)


@dataclass(frozen=True, slots=True)
class OpenEvent:
    """The connection is open. ``reconnect`` is True when it reopened after a drop."""

    type = "open"
    reconnect: bool = False


@dataclass(frozen=True, slots=True)
class MessageEvent:
    """A message: ``data`` is ``str`` for a text frame, ``bytes`` for a binary one.

    ``seq`` counts the messages of this WebSocket from 0; ``received_at`` is a UTC datetime.
    """

    type = "message"
    data: str | bytes
    seq: int
    received_at: datetime

    def json(self) -> Any:
        """The data parsed as JSON; raises ``nbws.JSONDecodeError`` (a ``ValueError``) if it isn't."""
        if isinstance(self.data, bytes):
            raise JSONDecodeError(
                f"message {self.seq} is binary ({len(self.data)} bytes), not JSON text; "
                "use event.data for the bytes"
            )
        try:
            return loads(self.data)
        except ValueError as exc:
            preview = self.data if len(self.data) <= 40 else self.data[:37] + "..."
            raise JSONDecodeError(f"message {self.seq} is not JSON ({exc}): {preview!r}") from None


@dataclass(frozen=True, slots=True)
class CloseEvent:
    """The connection is closed: ``code`` 1000 normal, 1005 no status sent, 1006 dropped."""

    type = "close"
    code: int
    reason: str
    was_clean: bool


@dataclass(frozen=True, slots=True)
class ErrorEvent:
    """Something failed: ``error`` is the exception, ``message`` one line about it."""

    type = "error"
    error: BaseException | None
    message: str


Event = OpenEvent | MessageEvent | CloseEvent | ErrorEvent
