"""The four event types a WebSocket dispatches, as in the browser's WebSocket API."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .errors import JSONDecodeError
from .jsontext import loads

__all__ = [
    "OpenEvent",
    "MessageEvent",
    "CloseEvent",
    "ErrorEvent",
    "Event",
    "to_datetime",
]


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


def to_datetime(time_ns: int) -> datetime:
    """A UTC datetime from nanoseconds since the epoch."""
    return datetime.fromtimestamp(time_ns / 1e9, tz=UTC)
