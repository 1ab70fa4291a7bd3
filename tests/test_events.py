"""nbws.events: the event dataclasses and MessageEvent.json()."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import pytest

import nbws

NOW = datetime(2026, 1, 1, tzinfo=UTC)


def test_message_event_json_parses_text():
    """json() returns the parsed value."""
    assert nbws.MessageEvent('{"a": [1, 2]}', 0, NOW).json() == {"a": [1, 2]}


def test_message_event_json_error_is_a_value_error_with_context():
    """Non-JSON text raises nbws.JSONDecodeError, a ValueError naming the message."""
    event = nbws.MessageEvent("hello there", 5, NOW)
    with pytest.raises(ValueError, match=r"message 5 is not JSON.*'hello there'"):
        event.json()
    with pytest.raises(nbws.JSONDecodeError):
        event.json()


def test_message_event_json_of_binary():
    """Binary data is not JSON text; the error says to use .data."""
    with pytest.raises(nbws.JSONDecodeError, match=r"binary.*event\.data"):
        nbws.MessageEvent(b"{}", 0, NOW).json()


def test_events_are_frozen_and_typed():
    """Events are immutable and carry their type name, as DOM events do."""
    close = nbws.CloseEvent(1000, "", True)
    with pytest.raises(dataclasses.FrozenInstanceError):
        close.code = 1001
    assert [e.type for e in (nbws.OpenEvent(), close, nbws.ErrorEvent(None, "x"))] == [
        "open",
        "close",
        "error",
    ]
    assert nbws.MessageEvent("x", 0, NOW).type == "message"


def test_deeply_nested_json_is_a_clear_value_error():
    """JSON nested deeper than Python parses is a JSONDecodeError saying so, never a RecursionError."""
    deep = "[" * 100_000 + "]" * 100_000
    event = nbws.MessageEvent(deep, 3, NOW)
    with pytest.raises(nbws.JSONDecodeError, match="nested too deeply"):
        event.json()


def test_a_received_message_event_behaves_as_one_made_by_hand():
    """The receive path's events (received_at computed when read) equal, hash, print, pickle and
    refuse assignment like MessageEvent(data, seq, received_at)."""
    import pickle

    from nbws.events import message_event, to_datetime

    time_ns = 1_767_225_600_123_456_000
    made, received = nbws.MessageEvent("x", 3, to_datetime(time_ns)), message_event("x", 3, time_ns)
    assert received == made and made == received and hash(received) == hash(made)
    assert received.received_at == datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)
    assert repr(received) == repr(made) and isinstance(received, nbws.MessageEvent)
    assert pickle.loads(pickle.dumps(received)) == made
    assert dataclasses.asdict(received) == dataclasses.asdict(made)
    with pytest.raises(dataclasses.FrozenInstanceError):
        received.data = "y"
    assert received != message_event("x", 4, time_ns)
