"""Archive: every row a connection receives, also in a Hive-partitioned Parquet dataset.

The layout (UTC, by arrival time)::

    PATH/date=2026-12-06/hour=09/part-20261206T090012.123456789Z-<writer>-000001.parquet
    PATH/_not_json/date=.../hour=.../part-....parquet     messages that are not JSON
    PATH/.incoming/                                        files being written (hidden)

The store hands over each sealed batch of rows (``add_rows``, on the loop thread, per chunk:
never per message); they wait in memory as Arrow tables until a row group's worth has gathered
(``ROW_GROUP_ROWS`` or ``ROW_GROUP_BYTES``; ``EARLY_ROW_GROUP_BYTES`` when the writer has
nothing to do, see ``row_group_ready``), then go to one background thread, which appends
them to the open file of their hour, under ``.incoming``. Every ``every`` seconds (and when the
connection closes, and when a file reaches ``MAX_FILE_BYTES``) the open chunk is sealed, what
waits is written, and each open file gets its footer and is renamed into its partition: a file
is only ever seen whole. A process killed mid-capture loses its open files, at most one
rotation's worth; they stay hidden and the next archive opened on the same PATH removes them.
The writer thread runs pyarrow's Parquet writer, which releases the GIL while it encodes.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import secrets
import threading
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from . import loop as nbws_loop
from .archiveformat import (
    MESSAGE_COLUMN,
    NOT_JSON_COLUMNS,
    TIME_COLUMN,
    fit,
    not_json_table,
    rows_table,
    unify,
)
from .errors import ArchiveError

__all__ = ["Archive", "DEFAULT_EVERY", "NOT_JSON_DIR", "INCOMING_DIR", "partition", "row_group_ready"]

DEFAULT_EVERY = 60.0
# Rows (or Arrow bytes) waiting in memory before they go to the writer as one row group: this
# bounds memory, and the writing overlaps the receiving instead of all falling on a rotation.
# Every column of a row group costs the writer a fixed amount (a compression context, pages):
# on mixed feeds (~30 columns, ~675 bytes a row) groups cut at 2 MiB took 1.82 us a row to
# write, at 8 MiB (then 8,192 rows) 1.67.
ROW_GROUP_ROWS = 8_192
ROW_GROUP_BYTES = 8 * 2**20
# An idle writer takes the waiting rows once they reach this size (wide rows: order books,
# feeds of several shapes), so that little is left to write when the connection closes
# (benchmarks/run.py, book diffs: the last write took 24 ms, then 7). Smaller row groups cost
# the writer more per row where rows have many columns (mixed feeds, ~30: 4,096-row groups
# 1.75 us a row against 1.48, best of 11; book diffs no more), but it runs beside the loop.
# Narrow rows (ticks, tickers, binary frames) still gather 8,192.
EARLY_ROW_GROUP_BYTES = 2 * 2**20
# Arrow bytes in one file before it is finished early, whatever the time.
MAX_FILE_BYTES = 512 * 2**20
NOT_JSON_DIR = "_not_json"
INCOMING_DIR = ".incoming"
COMPRESSION = "zstd"  # (level 1) smaller and, measured on order books, faster to write than snappy
MESSAGE_COMPRESSION = "lz4"  # whole messages (see _open_file)
# At exit, how long the files still to write may take before the interpreter ends anyway.
EXIT_WRITE_SECONDS = 30.0
_HOUR_NS = 3_600 * 10**9


def partition(hour: int) -> str:
    """The partition folder of an hour (hours since the epoch, UTC): ``date=…/hour=HH``."""
    when = time.gmtime(hour * 3_600)
    return f"date={time.strftime('%Y-%m-%d', when)}/hour={when.tm_hour:02d}"


def row_group_ready(rows: int, size: int, writer_idle: bool) -> bool:
    """Whether ``rows`` waiting for the writer (``size``: their Arrow bytes) go to it now as a
    row group: a full one, or ``EARLY_ROW_GROUP_BYTES`` for a writer with nothing to do."""
    full = rows >= ROW_GROUP_ROWS or size >= ROW_GROUP_BYTES
    return full or (writer_idle and size >= EARLY_ROW_GROUP_BYTES)


def _stamp(time_ns: int) -> str:
    seconds, ns = divmod(time_ns, 10**9)
    return f"{time.strftime('%Y%m%dT%H%M%S', time.gmtime(seconds))}.{ns:09d}Z"


def _seconds(every: float | timedelta) -> float:
    value = every.total_seconds() if isinstance(every, timedelta) else every
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
        raise ValueError(f"archive_every must be a positive number of seconds or a timedelta, not {every!r}")
    return float(value)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OSError):
        return True
    return True


def _ranged(field: pa.Field) -> bool:
    """Whether a column gets min/max statistics: times, numbers and booleans, by which engines
    skip row groups. Text gets none: a row group of a feed spans every symbol, so its range of text
    skips nothing, and computing it was ~20% of writing tickers (measured, 8,192-row groups)."""
    kind = field.type
    is_text = pa.types.is_string(kind) or pa.types.is_large_string(kind)
    return not (is_text or isinstance(kind, pa.ExtensionType))


class _Writer:
    """The one background thread that writes every archive's files, in the order handed over."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._pending = 0
        self._thread: threading.Thread | None = None

    def submit(self, job: Callable[[], None]) -> None:
        with self._lock:
            self._pending += 1
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="nbws-archive", daemon=True)
                self._thread.start()
        self._jobs.put(job)

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            try:
                job()  # (reports its own failures)
            finally:
                # Not kept while waiting for the next: the job holds its archive, and through
                # it a closed connection with everything it received.
                del job
                with self._lock:
                    self._pending -= 1
                    self._idle.notify_all()

    def idle(self) -> bool:
        """Whether nothing handed over is still to write (a hint: it may change right after)."""
        return self._pending == 0

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every file handed over is written; False on timeout."""
        with self._lock:
            return self._idle.wait_for(lambda: self._pending == 0, timeout)


_writer = _Writer()


class _OpenFile:
    """A file being written under ``.incoming`` (writer thread): row groups so far, no footer."""

    def __init__(self, writer: pq.ParquetWriter, incoming: Path, final: Path, schema: pa.Schema) -> None:
        self.writer = writer
        self.incoming = incoming
        self.final = final
        self.schema = schema
        self.rows = 0
        self.bytes = 0


class Archive:
    """Appends a connection's rows to the Parquet dataset at ``path`` (created if missing).

    ``seal()`` seals the store's open chunk (called on the loop thread at each rotation);
    ``report(error)`` is told of each file that could not be written (from the writer thread).
    Counters: ``rows`` and ``messages`` written (JSON rows, messages that are not JSON),
    ``files``, ``errors``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        every: float | timedelta = DEFAULT_EVERY,
        *,
        seal: Callable[[], None] = lambda: None,
        report: Callable[[ArchiveError], None] = lambda error: None,
    ) -> None:
        self.every = _seconds(every)
        self.path = Path(path).expanduser().absolute()
        try:
            (self.path / INCOMING_DIR).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(
                f"archive={str(path)!r}: cannot use it as a folder ({exc.strerror or exc})"
            ) from None
        self._remove_abandoned()
        self._seal = seal
        self._report = report
        self._writer_id = f"{os.getpid()}-{secrets.token_hex(3)}"
        self._timer: Any = None
        # The loop thread's side: rows waiting for a row group, per (not JSON?, hour); the files
        # the writer has open.
        self._waiting: dict[tuple[bool, int], list[pa.Table]] = {}
        self._waiting_bytes: dict[tuple[bool, int], int] = {}
        self._open: set[tuple[bool, int]] = set()
        # The writer thread's side.
        self._files: dict[tuple[bool, int], _OpenFile] = {}
        self._numbers = itertools.count(1)
        self._lock = threading.Lock()  # the counters
        self.rows = self.messages = self.files = self.errors = 0

    def _remove_abandoned(self) -> None:
        """Delete the half-written files of processes that died while writing (SIGKILL)."""
        for file in (self.path / INCOMING_DIR).glob("*.parquet"):
            pid = file.name.partition("-")[0]
            if pid.isdigit() and not _alive(int(pid)):
                file.unlink(missing_ok=True)

    # -- the loop thread ------------------------------------------------------------------------

    def add_rows(self, rows: Any, times: list[int] | np.ndarray, texts: list[str] | None = None) -> None:
        """A sealed batch of the frame's rows (a DataFrame or an Arrow table), their times and,
        for a DataFrame, the text of each row's message (see ``nbws.archiveformat``)."""
        if len(times):
            times = np.asarray(times, dtype="int64")
            self._add(False, rows_table(rows, times, texts), times)

    def add_not_json(self, times: list[int] | np.ndarray, data: list[str | bytes]) -> None:
        """Messages that are not JSON (binary, or text that does not parse)."""
        if times:
            times = np.asarray(times, dtype="int64")  # (once: the table needs them too)
            self._add(True, not_json_table(times, data), times)

    def _add(self, not_json: bool, table: pa.Table, times: np.ndarray) -> None:
        hours = times // _HOUR_NS
        first, last = int(hours.min()), int(hours.max())
        if first == last:
            parts = [(first, table)]
        else:
            parts = [(int(h), table.filter(pa.array(hours == h))) for h in np.unique(hours)]
        for hour, part in parts:
            key = (not_json, hour)
            self._waiting.setdefault(key, []).append(part)
            size = self._waiting_bytes[key] = self._waiting_bytes.get(key, 0) + part.nbytes
            rows = sum(t.num_rows for t in self._waiting[key])
            if row_group_ready(rows, size, _writer.idle()):
                self._hand_over(key, finish=False)

    def _hand_over(self, key: tuple[bool, int], finish: bool) -> None:
        tables = self._waiting.pop(key, [])
        self._waiting_bytes.pop(key, None)
        if finish:
            self._open.discard(key)
        elif tables:
            self._open.add(key)
        _writer.submit(lambda: self._write(key, tables, finish))

    def rotate(self) -> None:
        """Write every waiting row and finish every open file: renamed into its partition."""
        for key in sorted(self._waiting.keys() | self._open):
            self._hand_over(key, finish=True)

    def seal_and_rotate(self) -> None:
        """Seal the store's open chunk and write everything received so far (loop thread)."""
        self._seal()
        self.rotate()

    def on_state(self, closed: bool) -> None:
        """The connection's state changed: while it lives, rotate every ``every`` seconds; once
        closed, write everything (and rotate again if it reopens)."""
        if closed:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self.seal_and_rotate()
        elif self._timer is None:
            self._schedule()

    def _schedule(self) -> None:
        self._timer = nbws_loop.get_loop().call_later(self.every, self._tick)

    def _tick(self) -> None:
        self._schedule()
        self.seal_and_rotate()

    # -- the writer thread ----------------------------------------------------------------------

    def _write(self, key: tuple[bool, int], tables: list[pa.Table], finish: bool) -> None:
        """Append ``tables`` to the open file of ``key`` as one row group (a file of their own
        when their columns do not fit its schema); ``finish``: then rename it in."""
        file = self._files.get(key)
        unwritten = sum(t.num_rows for t in tables)
        try:
            if tables:
                table = pa.concat_tables(tables) if key[0] else unify(tables)
                if file is not None and not table.schema.equals(file.schema, check_metadata=True):
                    fitted = fit(table, file.schema)
                    if fitted is None:  # a new column or type: this file ends, the next has both
                        self._finish(key)
                        table = unify([file.schema.empty_table(), table])
                        file = None
                    else:
                        table = fitted
                if file is None:
                    file = self._files[key] = self._open_file(key, table)
                file.writer.write_table(table)
                file.rows += table.num_rows
                unwritten = 0
                file.bytes += table.nbytes
                if file.bytes >= MAX_FILE_BYTES:
                    finish = True
            if finish:
                self._finish(key)
        except Exception as exc:  # noqa: BLE001 - whatever it is, the user must hear of it
            self._failed(key, unwritten, exc)

    def _open_file(self, key: tuple[bool, int], table: pa.Table) -> _OpenFile:
        not_json, hour = key
        first = table.column(0)[0].cast(pa.int64()).as_py()
        name = f"part-{_stamp(first)}-{self._writer_id}-{next(self._numbers):06d}.parquet"
        incoming = self.path / INCOMING_DIR / f"{os.getpid()}-{name}"
        incoming.parent.mkdir(parents=True, exist_ok=True)  # (in case someone removed it)
        final = self.path / (NOT_JSON_DIR if not_json else "") / partition(hour) / name
        # No dictionaries: zstd finds the repeats itself, and building them cost more than the
        # rest of the writing (measured on the benchmarks' shapes: tickers 0.7 us a row without,
        # 1.8 with, files no bigger). Arrival times grow by small steps: delta-encoded. Whole
        # messages, the bulk of a book feed's bytes, are compressed with LZ4: zstd made them
        # ~2x smaller but took the archive past its budget on order books with snapshots
        # (benchmarks/run.py, F / D 0.91 against 0.96 with LZ4). So are messages that are not
        # JSON: on 256-byte binary frames zstd took 0.58 us a row, LZ4 0.19.
        codecs = {name: COMPRESSION for name in table.schema.names}
        for name in NOT_JSON_COLUMNS if not_json else (MESSAGE_COLUMN,):
            codecs[name] = MESSAGE_COMPRESSION
        writer = pq.ParquetWriter(
            incoming,
            table.schema,
            compression=codecs,
            use_dictionary=False,
            column_encoding={TIME_COLUMN: "DELTA_BINARY_PACKED"},
            write_statistics=[field.name for field in table.schema if _ranged(field)],
        )
        return _OpenFile(writer, incoming, final, table.schema)

    def _finish(self, key: tuple[bool, int]) -> None:
        file = self._files.pop(key, None)
        if file is None:
            return
        try:
            file.writer.close()
            file.final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file.incoming, file.final)
        except Exception as exc:
            file.incoming.unlink(missing_ok=True)
            raise _Lost(file.rows, exc) from exc
        with self._lock:
            self.files += 1
            if key[0]:
                self.messages += file.rows
            else:
                self.rows += file.rows

    def _failed(self, key: tuple[bool, int], count: int, exc: Exception) -> None:
        if isinstance(exc, _Lost):
            count, exc = count + exc.rows, exc.cause
        else:  # the open file cannot be trusted any more: drop it
            file = self._files.pop(key, None)
            if file is not None:
                count += file.rows
                with contextlib.suppress(Exception):
                    file.writer.close()
                file.incoming.unlink(missing_ok=True)
        with self._lock:
            self.errors += 1
        what = "messages that are not JSON" if key[0] else "rows"
        self._report(
            ArchiveError(
                f"nbws: could not write {count:,} {what} to the archive at {self.path} ({exc}); they "
                "are not in it (the frame keeps them unless max_rows dropped them); once the cause "
                "is fixed, the next files are written"
            )
        )

    # -- any thread -----------------------------------------------------------------------------

    def wait_written(self, timeout: float | None = None) -> bool:
        """Block until every row handed to the writer is written; False on timeout."""
        return _writer.wait(timeout)

    def written_by(self, deadline: float | None) -> None:
        """Block until every row handed to the writer is written; ``TimeoutError`` if that is
        not so by ``deadline`` (``time.monotonic()``; None: no limit)."""
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not self.wait_written(timeout):
            raise TimeoutError(f"the archive at {self.path} is still being written")

    def flush(self, timeout: float | None = None) -> None:
        """Seal, rotate and wait until written (from any thread but the loop thread's);
        ``TimeoutError`` after ``timeout`` seconds."""
        if nbws_loop.in_loop_thread():
            raise RuntimeError("flush_archive() waits for the loop thread: call it outside listeners")
        deadline = None if timeout is None else time.monotonic() + timeout

        async def on_the_loop() -> None:
            self.seal_and_rotate()

        nbws_loop.submit(on_the_loop()).result(timeout)
        self.written_by(deadline)


class _Lost(Exception):
    """A file could not be finished: its rows are lost."""

    def __init__(self, rows: int, cause: Exception) -> None:
        super().__init__(str(cause))
        self.rows = rows
        self.cause = cause


def _write_before_exit() -> None:
    """The interpreter is ending: the connections were closed (their rows handed over, see
    ``nbws.registry``); let the writer finish, within bounds."""
    _writer.wait(EXIT_WRITE_SECONDS)


nbws_loop.on_shutdown(_write_before_exit)
