"""nbws.messagelist: ``ws.messages``, a snapshot that makes each event when it is read."""

from __future__ import annotations

import pytest

import nbws.messagelist
from nbws.events import MessageEvent, message_event
from nbws.messagelog import MessageLog


def logged(count: int, chunk_size: int = 4, max_rows: int | None = None) -> MessageLog:
    """A log of ``count`` messages (text and binary alternating): sealed chunks and an open one."""
    log = MessageLog(max_rows=max_rows, chunk_size=chunk_size)
    for i in range(count):
        log.append(f'{{"n": {i}}}' if i % 2 else bytes([i % 256]), 1_000 + i)
    return log


def expected(seqs) -> list[MessageEvent]:
    return [message_event(f'{{"n": {i}}}' if i % 2 else bytes([i % 256]), i, 1_000 + i) for i in seqs]


def test_it_reads_as_the_list_of_every_retained_event():
    messages = logged(10).messages()  # two sealed chunks of 4, two messages in the open one
    assert len(messages) == 10
    assert list(messages) == expected(range(10)) and messages == expected(range(10))
    for i in range(-10, 10):
        assert messages[i] == expected(range(10))[i]
    for s in (slice(None), slice(3, 7), slice(-3, None), slice(2, 9, 3), slice(None, None, -1), slice(8, 2)):
        assert messages[s] == expected(range(10))[s], s
    assert messages.index(expected([5])[0]) == 5 and expected([9])[0] in messages
    assert list(reversed(messages)) == expected(range(9, -1, -1))
    with pytest.raises(IndexError, match=r"^message index 10 out of range: 10 messages are retained$"):
        messages[10]
    assert messages != expected(range(9)) and logged(0).messages() == []


def test_it_is_a_snapshot_that_later_messages_and_max_rows_leave_alone():
    log = logged(6, max_rows=5)
    before = log.messages()
    assert [m.seq for m in before] == [1, 2, 3, 4, 5]
    for i in range(6, 20):  # seals twice, and max_rows drops the chunks the snapshot holds
        log.append(f'{{"n": {i}}}' if i % 2 else bytes([i % 256]), 1_000 + i)
    assert before == expected(range(1, 6))
    assert log.messages() == expected(range(15, 20))


def test_reading_one_message_makes_one_event(monkeypatch):
    log = logged(100_003, chunk_size=2_048)
    made = []
    real = nbws.messagelist.message_event
    monkeypatch.setattr(nbws.messagelist, "message_event", lambda *a: made.append(a) or real(*a))
    messages = log.messages()
    assert made == []
    assert messages[-1] == expected([100_002])[0] and messages[0].seq == 0
    assert len(made) == 2


def test_its_repr_shows_the_first_and_last_few_of_a_long_list():
    assert repr(logged(3).messages()) == repr(expected(range(3)))
    text = repr(logged(1_000).messages())
    assert text.startswith("[MessageEvent(data=b'\\x00', seq=0") and text.endswith("] (1,000 messages)")
    assert text.count("MessageEvent(") == 6 and ", ..., " in text
