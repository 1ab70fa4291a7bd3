"""nbws.read: an archive back as ws.frame; time ranges, drift, reading while it is written, DuckDB."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import nbws
from nbws.archive import Archive
from nbws.store import MessageStore

BASE = pd.Timestamp("2026-12-06 22:00", tz="UTC").value
MINUTE = 60 * 10**9


def archive_messages(path: Path, batches: list[list], start: int = BASE, step: int = MINUTE) -> MessageStore:
    """Write each batch of messages as the rows of one rotation (one file an hour), arriving
    ``step`` ns apart from ``start``; returns a store fed the same messages (ws.frame's maker)."""
    archive = Archive(path)
    store = MessageStore(chunk_size=10**9)
    store.archive = archive
    t = start
    for batch in batches:
        for message in batch:
            store.append(message if isinstance(message, (str, bytes)) else json.dumps(message), t)
            t += step
        store.seal_now()
        archive.rotate()
    assert archive.wait_written(60)
    return store


def test_a_million_rows_read_back_equal_the_frame(servers, tmp_path):
    """Ticks, every third nested, as a feed sends them (pre-encoded, so the server is no limit)."""
    symbols = ("AAPL", "MSFT", "NVDA", "AMZN")
    payloads = [
        json.dumps(
            {"seq": i, "sym": symbols[i % 4], "px": 100 + i % 1000 / 100, "book": {"b": 1.5, "a": 2}}
            if i % 3 == 0
            else {"seq": i, "sym": symbols[i % 4], "px": 100 + i % 1000 / 100, "qty": i % 500}
        ).encode()
        for i in range(1_000_000)
    ]
    ws = nbws.connect(servers.stream(payloads), archive=tmp_path)
    ws.wait_closed(120)
    frame = ws.frame
    assert len(frame) == 1_000_000
    pd.testing.assert_frame_equal(nbws.read(tmp_path), frame)


def test_start_and_end_keep_the_rows_between_and_open_only_those_partitions(tmp_path):
    """Three hours of rows over midnight; a corrupt file in an hour outside the range is never
    opened (partition pruning), while reading everything trips on it."""
    store = archive_messages(tmp_path, [[{"i": i} for i in range(180)]], start=BASE + 60 * MINUTE)
    frame = store.frame()  # 23:00 to 01:59
    start, end = "2026-12-07 00:10", pd.Timestamp("2026-12-07 01:00:30", tz="UTC").to_pydatetime()
    expected = frame[(frame.index >= pd.Timestamp(start, tz="UTC")) & (frame.index < pd.Timestamp(end))]
    assert len(expected) == 51
    bad = tmp_path / "date=2026-12-06" / "hour=23" / "part-20261206T230000.000000000Z-x-000009.parquet"
    bad.write_bytes(b"not parquet")
    pd.testing.assert_frame_equal(nbws.read(tmp_path, start, end), expected)
    assert len(nbws.read(tmp_path, start="2026-12-07 01:59")) == 1
    assert len(nbws.read(tmp_path, end="2026-12-06 23:00")) == 0
    with pytest.raises(Exception, match=r"(?i)parquet"):
        nbws.read(tmp_path)


def test_times_without_a_zone_are_utc_and_with_one_are_converted(tmp_path):
    archive_messages(tmp_path, [[{"i": i} for i in range(10)]])
    utc = nbws.read(tmp_path, start="2026-12-06 22:05")
    paris = nbws.read(tmp_path, start=pd.Timestamp("2026-12-06 23:05", tz="Europe/Paris"))
    assert utc["i"].tolist() == paris["i"].tolist() == [5, 6, 7, 8, 9]


@pytest.mark.parametrize(
    "batches",
    [
        [[{"x": 1}], [{"x": 2.5, "y": "new"}], [{"x": "three"}]],
        [[{"p": 1, "b": [["1", "2"]]}], [{"p": 2}], [{"p": 3.5, "b": "none"}]],
        [[{"id": 2**60}], [{"id": None}], [{"id": 2**60 + 1, "z": True}]],
    ],
    ids=["widen then change", "arrays come and go", "wide ids"],
)
def test_files_that_disagree_read_back_as_one_frame_of_them_all(tmp_path, batches):
    store = archive_messages(tmp_path, batches)
    assert len(sorted(tmp_path.glob("date=*/hour=*/*.parquet"))) == 3
    pd.testing.assert_frame_equal(nbws.read(tmp_path), store.frame())


def test_an_archive_read_while_it_is_written_gives_complete_rows_so_far(demo, tmp_path):
    ws = nbws.connect(f"{demo.url}/ticker?rate=3000&count=6000", archive=tmp_path, archive_every=0.05)
    lengths: list[int] = []
    failures: list[str] = []

    def reader() -> None:
        while ws.ready_state != nbws.CLOSED:
            try:
                rows = nbws.read(tmp_path)
            except Exception as exc:  # noqa: BLE001 - a reader must never trip over a file
                failures.append(repr(exc))
                return
            if len(rows) and rows["seq"].tolist() != list(range(1, len(rows) + 1)):
                failures.append(f"rows are not the first {len(rows)}")
            lengths.append(len(rows))

    thread = threading.Thread(target=reader)
    thread.start()
    ws.wait_closed(60)
    thread.join(60)
    assert failures == []
    assert lengths == sorted(lengths) and len(set(lengths)) >= 3, lengths
    pd.testing.assert_frame_equal(nbws.read(tmp_path), ws.frame)


def test_two_writers_in_one_folder_read_back_in_time_order(demo, tmp_path):
    first = nbws.connect(f"{demo.url}/ticker?rate=500&count=400", archive=tmp_path, archive_every=0.1)
    second = nbws.connect(f"{demo.url}/ticker?rate=500&count=400", archive=tmp_path, archive_every=0.1)
    first.wait_closed(60)
    second.wait_closed(60)
    rows = nbws.read(tmp_path)
    assert len(rows) == 800 and rows.index.is_monotonic_increasing
    assert sorted(rows["seq"]) == sorted(list(range(1, 401)) * 2)


def test_duckdb_reads_the_whole_dataset_with_its_partitions(tmp_path):
    import duckdb

    store = archive_messages(tmp_path, [[{"x": 1, "s": "a"}], [{"x": 2.5, "n": {"v": 1}}], [{"b": [1, 2]}]])
    frame = store.frame()
    query = (
        f"SELECT epoch_ns(received_at) AS t, x, \"n.v\", _message->'$.b'->>1 AS b1, date, hour "
        f"FROM read_parquet('{tmp_path}/date=*/hour=*/*.parquet', hive_partitioning=true, "
        "union_by_name=true) "
        "ORDER BY t"
    )
    rows = duckdb.connect().execute(query).fetchall()
    assert [r[0] for r in rows] == frame.index.asi8.tolist()
    assert [r[1] for r in rows] == [1.0, 2.5, None]
    assert [r[2] for r in rows] == [None, 1, None] and rows[2][3] == "2"
    assert str(rows[0][4]) == "2026-12-06" and rows[0][5] == 22


def test_messages_that_are_not_json_and_an_empty_archive(tmp_path):
    archive_messages(tmp_path, [["plain text", {"a": 1}, b"\x01\x02"]])
    others = nbws.read(tmp_path, not_json=True)
    assert others["data"].tolist() == ["plain text", b"\x01\x02"]
    assert others.index.name == "received_at"
    empty = nbws.read(tmp_path, start="2030-01-01")
    assert len(empty) == 0 and empty.index.name == "received_at" and str(empty.index.tz) == "UTC"
    assert len(nbws.read(tmp_path, start="2030-01-01", not_json=True)) == 0


def test_mistakes_are_one_line_errors_that_say_what_to_give(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no archive at .*archive= or --out"):
        nbws.read(tmp_path / "missing")
    with pytest.raises(ValueError, match="start must be a time such as"):
        nbws.read(tmp_path, start="yesterday-ish")
    with pytest.raises(ValueError, match="end must be a time"):
        nbws.read(tmp_path, end=object())


def test_rows_keep_their_nanoseconds(tmp_path):
    archive = Archive(tmp_path)
    times = np.array([BASE + 1, BASE + 2, BASE + 999_999_999], dtype="int64")
    from nbws.columns import chunk_frame

    archive.add_rows(chunk_frame([{"i": 0}, {"i": 1}, {"i": 2}]), times)
    archive.rotate()
    assert archive.wait_written(20)
    assert nbws.read(tmp_path).index.asi8.tolist() == times.tolist()
