"""``nbws.read``: an archive (``archive=``, ``nbws record``) back as the frame it was.

Only the partitions (``date=…/hour=…``) and files (named by their first row's time) that can
hold rows between ``start`` and ``end`` are opened. Files are only ever renamed in whole, so an
archive that is still being written reads as what it holds so far. The rows go through the
frame's own buffers (``nbws.framebuffer``), so columns and types combine across files (a
field that appears later, a type that widens) as they do in ``ws.frame``.
"""

from __future__ import annotations

import os
import re
from datetime import date as Date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from . import collector
from .archive import NOT_JSON_DIR
from .archiveformat import TIME_COLUMN, TIME_TYPE, table_messages, table_rows
from .framebuffer import FrameBuffer, index_of

__all__ = ["read"]

_DAY_NS = 86_400 * 10**9
_HOUR_NS = 3_600 * 10**9
_FILE_TIME = re.compile(r"part-(\d{8}T\d{6})\.(\d{9})Z-")


def _bound(value: Any, name: str) -> int | None:
    """A time given as a string, datetime, Timestamp or datetime64, as ns since the epoch (UTC;
    a time without a zone is taken as UTC)."""
    if value is None:
        return None
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError):
        raise ValueError(
            f"{name} must be a time such as '2026-12-06 09:30' or a datetime, not {value!r}"
        ) from None
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def _overlaps(first: int, length: int, lo: int | None, hi: int | None) -> bool:
    return (hi is None or first < hi) and (lo is None or first + length > lo)


def _partitions(root: Path, lo: int | None, hi: int | None) -> list[Path]:
    """The hour folders under ``root`` that can hold rows in [lo, hi), oldest first."""
    folders = []
    for day in sorted(root.glob("date=*")):
        try:
            first = (Date.fromisoformat(day.name[5:]) - Date(1970, 1, 1)).days * _DAY_NS
        except ValueError:
            continue  # not one of ours
        if not _overlaps(first, _DAY_NS, lo, hi):
            continue
        for hour in sorted(day.glob("hour=*")):
            if hour.name[5:].isdigit() and _overlaps(first + int(hour.name[5:]) * _HOUR_NS, _HOUR_NS, lo, hi):
                folders.append(hour)
    return folders


def _files(root: Path, lo: int | None, hi: int | None) -> list[Path]:
    files = []
    for folder in _partitions(root, lo, hi):
        for file in sorted(folder.glob("*.parquet")):
            found = _FILE_TIME.match(file.name)
            if hi is not None and found:
                first = pd.Timestamp(f"{found[1]}", tz="UTC").value + int(found[2])
                if first >= hi:
                    continue  # it starts after the end
            files.append(file)
    return files


def _table(file: Path, lo: int | None, hi: int | None) -> pa.Table | None:
    try:
        table = pq.read_table(file)
    except FileNotFoundError:  # removed since it was listed
        return None
    if lo is None and hi is None:
        return table
    times = table.column(TIME_COLUMN)
    keep = None
    for bound, compare in ((lo, pc.greater_equal), (hi, pc.less)):
        if bound is not None:
            mask = compare(times, pa.scalar(bound, TIME_TYPE))
            keep = mask if keep is None else pc.and_(keep, mask)
    return table.filter(keep)


def read(
    path: str | os.PathLike, start: Any = None, end: Any = None, *, not_json: bool = False
) -> pd.DataFrame:
    """The rows archived at ``path`` (``archive=PATH``, ``nbws record --out PATH``) as a
    DataFrame with the columns and ``received_at`` index ``ws.frame`` has, in time order.

    ``start`` and ``end`` (strings such as ``"2026-12-06 09:30"``, datetimes, Timestamps; UTC
    when they have no zone) keep the rows received from ``start`` up to, not including,
    ``end``. ``not_json=True`` gives the messages that were not JSON instead (binary ones, and
    text that does not parse), with one ``data`` column of ``str`` or ``bytes``.
    """
    root = Path(path).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no archive at {str(path)!r}: give the folder passed as archive= or --out")
    lo, hi = _bound(start, "start"), _bound(end, "end")
    if not_json:
        return _messages(root / NOT_JSON_DIR, lo, hi)
    buffer = FrameBuffer()
    for file in _files(root, lo, hi):
        table = _table(file, lo, hi)
        if table is not None and table.num_rows:
            with collector.paused():  # (messages parsed again make thousands of objects that stay)
                frame, times = table_rows(table)
                buffer.append(frame, times)
    frame = buffer.frame(buffer.start, buffer.stop)
    return frame if frame.index.is_monotonic_increasing else frame.sort_index(kind="stable")


def _messages(root: Path, lo: int | None, hi: int | None) -> pd.DataFrame:
    frames = [table_messages(t) for f in _files(root, lo, hi) if (t := _table(f, lo, hi)) is not None]
    if not frames:
        return pd.DataFrame({"data": np.empty(0, object)}, index=index_of([]))
    frame = pd.concat(frames)
    return frame if frame.index.is_monotonic_increasing else frame.sort_index(kind="stable")
