"""nbws.archive: ``archive=PATH`` writes every row into a Hive-partitioned Parquet dataset.

Connections stream from the real demo server on 127.0.0.1; the archive is read back with
``nbws.read`` (its own tests are in test_archiveread) and compared with ``ws.frame``.
"""

from __future__ import annotations

import gc
import json
import os
import threading
import time
import weakref
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

import nbws
from nbws.archive import INCOMING_DIR, NOT_JSON_DIR, Archive, partition, row_group_ready
from nbws.columns import chunk_frame
from nbws.store import MessageStore

HOUR_NS = 3_600 * 10**9
BASE = pd.Timestamp("2026-12-06 09:00", tz="UTC").value


def parquet_files(root: Path) -> list[Path]:
    """The files of the dataset a query engine sees (``date=*/hour=*/*.parquet``)."""
    return sorted(root.glob("date=*/hour=*/*.parquet"))


def wait_until(condition, timeout: float = 20.0, what: str = "") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.02)


def test_every_row_of_a_stream_is_archived_and_reads_back_as_the_frame(demo, tmp_path):
    ws = nbws.connect(f"{demo.url}/ticker?rate=0&count=20000", archive=tmp_path)
    ws.wait_closed(60)  # (waits for the archive too)
    pd.testing.assert_frame_equal(nbws.read(tmp_path), ws.frame)
    stats = ws.stats
    assert stats["archived"] == 20_000 and stats["archive_errors"] == 0
    files = parquet_files(tmp_path)
    assert len(files) == stats["archive_files"] >= 1
    first = pd.Timestamp(ws.frame.index[0])
    assert files[0].parent.relative_to(tmp_path).as_posix() == first.strftime("date=%Y-%m-%d/hour=%H")
    assert not list((tmp_path / INCOMING_DIR).iterdir())  # nothing half-written is left


def test_row_groups_carry_the_time_and_number_ranges_engines_skip_by_and_no_text_ranges(demo, tmp_path):
    ws = nbws.connect(f"{demo.url}/ticker?rate=0&count=20000", archive=tmp_path)
    ws.wait_closed(60)
    seen = 0
    for path in parquet_files(tmp_path):
        file = pq.ParquetFile(path)
        names = file.schema_arrow.names
        for number in range(file.metadata.num_row_groups):
            group = file.metadata.row_group(number)
            rows = file.read_row_group(number)
            columns = {names[i]: group.column(i).statistics for i in range(group.num_columns)}
            times = rows["received_at"].cast("int64").to_numpy()
            time_range = columns["received_at"]
            assert time_range is not None and time_range.has_min_max
            assert (time_range.min.value, time_range.max.value) == (times.min(), times.max())
            seqs = rows["seq"].to_pylist()
            assert (columns["seq"].min, columns["seq"].max) == (min(seqs), max(seqs))
            assert columns["symbol"] is None or not columns["symbol"].has_min_max
            seen += group.num_rows
    assert seen == 20_000


def test_with_max_rows_the_frame_stays_small_and_the_archive_keeps_everything(demo, tmp_path):
    ws = nbws.connect(f"{demo.url}/book?rate=0&count=6000&levels=5", max_rows=100, archive=tmp_path)
    ws.wait_closed(60)
    archived = nbws.read(tmp_path)
    assert len(ws.frame) == 100 and len(archived) == 6000
    assert archived["u"].tolist() == list(range(2, 12_001, 2))  # every diff, in order
    pd.testing.assert_frame_equal(archived.iloc[-100:], ws.frame)
    assert isinstance(archived["b"].iloc[0], list)


def test_files_rotate_while_the_connection_stays_open(demo, tmp_path):
    """archive_every: the open chunk is sealed and written each time, however few rows came."""
    ws = nbws.connect(f"{demo.url}/ticker?rate=50", archive=tmp_path, archive_every=0.2)
    wait_until(lambda: len(parquet_files(tmp_path)) >= 3, what="three rotations")
    assert ws.ready_state == nbws.OPEN
    ws.close()
    rows = nbws.read(tmp_path)
    assert rows["seq"].tolist() == list(range(1, len(ws.frame) + 1))  # none lost or repeated
    pd.testing.assert_frame_equal(rows, ws.frame)


def test_flush_archive_writes_what_arrived_so_far(demo, tmp_path):
    ws = nbws.connect(f"{demo.url}/ticker?rate=200", archive=tmp_path)  # (rotation: a minute away)
    ws.wait_for_messages(50, timeout=20)
    ws.flush_archive(timeout=20)
    seen = ws.stats["archived"]
    assert seen >= 50 and len(nbws.read(tmp_path)) == seen
    assert ws.ready_state == nbws.OPEN


def test_messages_that_are_not_json_are_archived_too(demo, tmp_path):
    ws = nbws.connect(f"{demo.url}/echo", archive=tmp_path).wait_open(10)
    ws.send('{"n": 1}')
    ws.send("not json")
    ws.send(b"\x00\x01binary")
    ws.send('{"n": 2}')
    ws.wait_for_messages(4, timeout=10)
    ws.close()
    assert nbws.read(tmp_path)["n"].tolist() == [1, 2]
    others = nbws.read(tmp_path, not_json=True)
    assert others["data"].tolist() == ["not json", b"\x00\x01binary"]
    arrived = [ws.messages[1].received_at, ws.messages[2].received_at]  # (datetimes, rounded to the us)
    assert all(abs(t - a) <= pd.Timedelta(1, "us") for t, a in zip(others.index, arrived))
    assert ws.stats["archived_not_json"] == 2
    assert (tmp_path / NOT_JSON_DIR).is_dir()
    assert all(NOT_JSON_DIR not in f.parts for f in parquet_files(tmp_path))


def test_whole_messages_are_lz4_and_every_other_column_zstd(demo, tmp_path):
    """The documented codecs (docs/archive.md): the bulk of a feed's bytes, messages kept whole
    (``_message``, and messages that are not JSON), with the faster LZ4; the columns with zstd."""
    ws = nbws.connect(f"{demo.url}/echo", archive=tmp_path).wait_open(10)
    ws.send('{"n": 1, "b": [[1, 2]]}')
    ws.send("not json")
    ws.send(b"\x00\x01binary")
    ws.wait_for_messages(3, timeout=10)
    ws.close()
    codecs = {}
    for path in tmp_path.glob("**/date=*/hour=*/*.parquet"):
        group = pq.ParquetFile(path).metadata.row_group(0)
        for i in range(group.num_columns):
            codecs[group.column(i).path_in_schema] = group.column(i).compression
    whole = {"_message", "text", "binary"}
    assert {name: codecs[name] for name in whole} == dict.fromkeys(whole, "LZ4")
    assert {codecs[name] for name in codecs.keys() - whole} == {"ZSTD"}
    assert {"received_at", "n"} <= codecs.keys()


def test_rows_go_to_the_partition_of_the_hour_they_arrived_in(tmp_path):
    """A batch that spans midnight is split between two dates."""
    archive = Archive(tmp_path)
    midnight = pd.Timestamp("2026-12-07", tz="UTC").value
    times = np.array([midnight - 2, midnight - 1, midnight, midnight + HOUR_NS], dtype="int64")
    archive.add_rows(chunk_frame([{"i": i} for i in range(4)]), times)
    archive.rotate()
    assert archive.wait_written(20)
    folders = [f.parent.relative_to(tmp_path).as_posix() for f in parquet_files(tmp_path)]
    assert folders == ["date=2026-12-06/hour=23", "date=2026-12-07/hour=00", "date=2026-12-07/hour=01"]
    assert nbws.read(tmp_path)["i"].tolist() == [0, 1, 2, 3]
    assert partition(midnight // HOUR_NS) == "date=2026-12-07/hour=00"


def test_batches_that_join_an_open_file_keep_every_field_on_reading(tmp_path, monkeypatch):
    """Batches written as row groups of one open file: one whose columns come in another
    order joins it; one with a field kept only in the message (a new array) starts the next
    file, since a file's schema (which fields its messages hold) is fixed when it opens."""
    monkeypatch.setattr(nbws.archive, "ROW_GROUP_ROWS", 1)  # every batch its own row group
    store = MessageStore(chunk_size=2)
    store.archive = Archive(tmp_path)
    messages = [
        *({"i": i, "b": [i]} for i in range(4)),
        *({"b": [i], "i": i} for i in range(4, 8)),  # the same columns, in another order
        *({"i": i, "b": [i], "x": [i, "new"]} for i in range(8, 12)),  # a new array
    ]
    for i, message in enumerate(messages):
        store.append(json.dumps(message), BASE + i)
    store.seal_now()
    store.archive.rotate()
    assert store.archive.wait_written(20)
    pd.testing.assert_frame_equal(nbws.read(tmp_path), store.frame())
    groups = [pq.ParquetFile(file).metadata.num_row_groups for file in parquet_files(tmp_path)]
    assert groups == [2, 1]


@pytest.mark.parametrize(
    ("rows", "size", "writer_idle", "ready"),
    [
        (8_192, 1, False, True),  # a full group: rows
        (10, 8 * 2**20, False, True),  # a full group: bytes
        (4_096, 2 * 2**20, True, True),  # wide rows, and the writer has nothing to do
        (4_096, 2 * 2**20, False, False),  # wide rows, the writer busy: they gather
        (8_191, 2 * 2**20 - 1, True, False),  # narrow rows gather to a full group
    ],
)
def test_rows_go_to_the_writer_as_a_full_row_group_or_early_when_it_is_idle(rows, size, writer_idle, ready):
    assert row_group_ready(rows, size, writer_idle) is ready


def test_an_idle_writer_takes_wide_rows_early_and_a_busy_one_lets_them_gather(tmp_path, monkeypatch):
    """Row groups as written: each batch on its own while the writer waits for work, the batches
    that came while it was busy together."""
    monkeypatch.setattr(nbws.archive, "EARLY_ROW_GROUP_BYTES", 1)
    archive = Archive(tmp_path)
    assert archive.wait_written(20)  # (the writer is shared: nothing left from other tests)

    def add(first: int) -> None:
        numbers = range(first, first + 3)
        archive.add_rows(chunk_frame([{"i": i} for i in numbers]), BASE + np.array(numbers))

    add(0)
    assert archive.wait_written(20)
    add(3)
    assert archive.wait_written(20)
    gate = threading.Event()
    nbws.archive._writer.submit(lambda: gate.wait(20))  # the writer busy with another archive's file
    add(6)
    add(9)
    gate.set()
    archive.rotate()
    assert archive.wait_written(20)
    [file] = parquet_files(tmp_path)
    metadata = pq.ParquetFile(file).metadata
    assert [metadata.row_group(i).num_rows for i in range(metadata.num_row_groups)] == [3, 3, 6]
    assert nbws.read(tmp_path)["i"].tolist() == list(range(12))


def test_a_file_is_renamed_in_whole_never_seen_half_written(tmp_path):
    """Each visible file is complete (a footer, all its rows) from the moment it appears."""
    archive = Archive(tmp_path)
    seen_bad: list[str] = []
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            for file in parquet_files(tmp_path):
                try:
                    if pq.ParquetFile(file).metadata.num_rows != 20_000:
                        seen_bad.append(f"{file.name}: rows")
                except Exception as exc:  # noqa: BLE001 - what a reader would have hit
                    seen_bad.append(f"{file.name}: {exc}")

    watcher = threading.Thread(target=watch)
    watcher.start()
    base = pd.Timestamp("2026-12-06 09:00", tz="UTC").value
    try:
        for f in range(10):
            rows = chunk_frame([{"f": f, "i": i, "text": "x" * 50} for i in range(20_000)])
            archive.add_rows(rows, base + f * 20_000 + np.arange(20_000))
            archive.rotate()
        assert archive.wait_written(60)
    finally:
        done.set()
        watcher.join()
    assert seen_bad == []
    assert len(parquet_files(tmp_path)) == 10


def test_a_file_that_cannot_be_written_is_reported_and_later_files_are_written(demo, tmp_path):
    """A background failure is an error event (printed when nobody listens), never silent; the
    stream goes on, and once the cause is gone the next rotation writes again."""
    errors = []
    ws = nbws.connect(f"{demo.url}/ticker?rate=100", archive=tmp_path, archive_every=0.2)
    ws.add_event_listener("error", errors.append)
    ws.wait_for_messages(5, timeout=20)
    day = tmp_path / pd.Timestamp.now(tz="UTC").strftime("date=%Y-%m-%d")
    blocker = day if not day.exists() else day / pd.Timestamp.now(tz="UTC").strftime("hour=%H")
    if blocker.exists():
        import shutil

        shutil.rmtree(blocker)
    blocker.write_text("a file where the archive needs a folder")
    wait_until(lambda: errors, what="the error event")
    assert isinstance(errors[0].error, nbws.ArchiveError)
    assert "could not write" in errors[0].message and str(tmp_path) in errors[0].message
    assert "\n" not in errors[0].message
    assert ws.ready_state == nbws.OPEN and ws.stats["archive_errors"] >= 1
    blocker.unlink()
    written = ws.stats["archived"]
    wait_until(lambda: ws.stats["archived"] > written, what="a file after the fix")
    ws.close()


def test_half_written_files_of_dead_writers_are_removed_others_kept(tmp_path):
    incoming = tmp_path / INCOMING_DIR
    incoming.mkdir(parents=True)
    dead = incoming / "999999999-part-x.parquet"  # (no process has that id)
    mine = incoming / f"{os.getpid()}-part-y.parquet"
    dead.write_bytes(b"PAR1 half")
    mine.write_bytes(b"PAR1 half")
    Archive(tmp_path)
    assert not dead.exists() and mine.exists()


@pytest.mark.parametrize(
    ("kwargs", "words"),
    [
        ({"archive_every": 0}, "archive_every must be a positive number of seconds"),
        ({"archive_every": "1min"}, "archive_every must be a positive number of seconds"),
        ({"archive": "FILE"}, "cannot use it as a folder"),
    ],
)
def test_bad_archive_arguments_are_one_line_errors_before_any_io(demo, tmp_path, kwargs, words):
    (tmp_path / "FILE").write_text("x")
    kwargs = {"archive": tmp_path / "ok", **kwargs}
    if kwargs["archive"] == "FILE":
        kwargs["archive"] = tmp_path / "FILE"
    with pytest.raises(ValueError, match=words) as caught:
        nbws.connect(f"{demo.url}/echo", **kwargs)
    assert "\n" not in str(caught.value)
    assert nbws.connections() == {}


def test_flush_archive_without_an_archive_says_how_to_get_one(demo):
    ws = nbws.connect(f"{demo.url}/echo")
    with pytest.raises(ValueError, match="archive=PATH"):
        ws.flush_archive()


def test_a_closed_connection_with_an_archive_is_freed_once_nobody_holds_it(demo, tmp_path):
    ws = nbws.connect(f"{demo.url}/ticker?rate=0&count=5000", archive=tmp_path)
    ws.wait_closed(60)
    assert len(nbws.read(tmp_path)) == 5000
    gone = weakref.ref(ws)
    del ws
    gc.collect()
    # (the writer thread kept its last job, and through it the connection and all it received)
    assert gone() is None, "the closed connection is still held"
