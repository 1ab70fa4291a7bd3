"""nbws.messagelog: the log of what a connection received, without pandas."""

from __future__ import annotations

import pytest

import nbws.messagelog
from nbws.messagelog import MessageLog, flat_row, json_rows, parse_messages


def fill(log: MessageLog, payloads) -> None:
    for i, payload in enumerate(payloads):
        log.append(payload, 1_000 + i)


def test_flat_row_names_leaves_as_the_frame_does():
    assert flat_row({"a": 1, "b": {"c": {"d": "x"}, "e": [1, {"f": 2}]}}) == {
        "a": 1,
        "b.c.d": "x",
        "b.e": [1, {"f": 2}],
    }
    assert flat_row({"a": {"b": 1}, "a.b": 2}) == {"a.b": 1, "a.b.1": 2}
    assert flat_row({"a": {}, "b": None}) == {"b": None}  # {} has no leaves: no column


def test_flat_row_takes_nesting_deeper_than_the_recursion_limit():
    row: dict = {"leaf": 1}
    for _ in range(1_500):
        row = {"k": row}
    ((name, value),) = flat_row(row).items()
    assert name.endswith(".k.leaf") and value == 1


def test_json_rows_puts_non_objects_in_value_and_leaves_out_what_is_not_json():
    log = MessageLog()
    fill(log, ['{"a": 1}', "[1, 2]", "not json", b"\x00", "3"])
    times, values = log._open_chunk()
    assert json_rows(times, values) == ([{"a": 1}, {"value": [1, 2]}, {"value": 3}], [1_000, 1_001, 1_004])


@pytest.mark.parametrize("chunk_size", [1, 3, 7, 100])
def test_recent_rows_are_the_newest_rows_across_seals(chunk_size):
    log = MessageLog(chunk_size=chunk_size)
    fill(log, [f'{{"i": {i}, "n": {{"x": {i}}}}}' if i % 3 else "nope" for i in range(20)])
    rows = log.recent_rows(4)
    assert [row["i"] for _, row in rows] == [14, 16, 17, 19]
    assert [t for t, _ in rows] == [1_014, 1_016, 1_017, 1_019]
    assert rows[-1][1] == {"i": 19, "n.x": 19}


def test_recent_rows_respect_max_rows():
    log = MessageLog(max_rows=2, chunk_size=2)
    fill(log, ['{"i": 0}', '{"i": 1}', '{"i": 2}'])
    assert [row["i"] for _, row in log.recent_rows(5)] == [1, 2]


def test_bytes_received_counts_utf8_bytes():
    """bytes_received counts encoded bytes, as on the wire."""
    log = MessageLog()
    fill(log, ['"é"', b"\x00\x01"])
    assert log.bytes_received == len('"é"'.encode()) + 2


@pytest.fixture
def parsed(monkeypatch) -> list:
    """Every payload nbws.messagelog parses, in order."""
    seen: list = []
    loads = nbws.messagelog.fast_loads

    def counting_loads(data):
        seen.append(data)
        return loads(data)

    monkeypatch.setattr(nbws.messagelog, "fast_loads", counting_loads)
    return seen


def test_messages_are_parsed_once_when_first_needed_not_on_arrival(parsed):
    """Appending parses nothing; the first reader of a value parses it, the seal only the rest."""
    log = MessageLog(chunk_size=6)
    fill(log, ['{"i": 0}', "nope", '{"i": 2}'])
    assert parsed == []
    assert log.parse_errors == 1
    assert parsed == ['{"i": 0}', "nope", '{"i": 2}']  # (each once: orjson refused "nope")
    fill(log, ['{"i": 3}'])
    assert log._open_chunk() == (
        [1_000, 1_001, 1_002, 1_000],
        [{"i": 0}, nbws.messagelog.NOT_JSON, {"i": 2}, {"i": 3}],
    )
    fill(log, ['{"i": 4}', b"\x00"])  # the sixth message seals the chunk
    assert parsed == ['{"i": 0}', "nope", '{"i": 2}', '{"i": 3}', '{"i": 4}']
    assert log.parse_errors == 2 and log.received == 6


def test_parse_messages_counts_what_is_not_json():
    assert parse_messages(['{"a": 1}', "[1]"]) == ([{"a": 1}, [1]], 0)
    values, errors = parse_messages(['{"a": NaN}', "x", b"{}", '"s"'])
    assert values[1:] == [nbws.messagelog.NOT_JSON, nbws.messagelog.NOT_JSON, "s"] and errors == 2
    assert values[0]["a"] != values[0]["a"]  # NaN, as Python servers send it


def test_sealing_and_listing_messages_make_no_garbage_collection(collections):
    """A chunk's parse and ``messages()`` make thousands of objects at once; the young
    collections would only move them to the oldest generation, bringing on full ones. (One
    collection may follow each: the first allocation after the pause takes them all in one go.)"""
    log = MessageLog(chunk_size=2_000)
    fill(log, ['{"b": [["1.00", "2"], ["1.01", "3"]], "a": [["1.02", "1"]]}'] * 1_999)
    collections.clear()
    fill(log, ['{"b": [], "a": []}'])  # seals: 2,000 messages parsed, 10,000 containers
    assert len(collections) <= 1 and log.parse_errors == 0
    collections.clear()
    assert len(log.messages()[:]) == 2_000 and len(collections) <= 1  # (a slice makes every event)
