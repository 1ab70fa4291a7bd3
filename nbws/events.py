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
    "message_event",
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


class _ReceivedMessageEvent(MessageEvent):
    """A MessageEvent as the receive path makes it: ``received_at`` is computed when read (most
    listeners never read it, and a datetime costs more than the rest of the event)."""

    __slots__ = ("_time_ns",)

    @property
    def received_at(self) -> datetime:  # type: ignore[override]
        return to_datetime(self._time_ns)

    def __repr__(self) -> str:
        return f"MessageEvent(data={self.data!r}, seq={self.seq!r}, received_at={self.received_at!r})"

    def __eq__(self, other: object) -> bool:
        if isinstance(other, MessageEvent):
            return (self.data, self.seq, self.received_at) == (other.data, other.seq, other.received_at)
        return NotImplemented

    def __hash__(self) -> int:
        return hash((self.data, self.seq, self.received_at))

    def __reduce__(self) -> tuple:
        return MessageEvent, (self.data, self.seq, self.received_at)


_new_event = object.__new__
_set_data = MessageEvent.data.__set__  # the slots' own setters: frozen to everyone else
_set_seq = MessageEvent.seq.__set__
_set_time = _ReceivedMessageEvent._time_ns.__set__


def message_event(data: str | bytes, seq: int, time_ns: int) -> MessageEvent:
    """The MessageEvent of message ``seq``, received at ``time_ns`` (ns since the epoch)."""
    event = _new_event(_ReceivedMessageEvent)
    _set_data(event, data)
    _set_seq(event, seq)
    _set_time(event, time_ns)
    return event


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
