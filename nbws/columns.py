"""A chunk of parsed JSON objects -> a DataFrame: one row each, nested objects as dotted columns.

The store hands over the values it already parsed (orjson, once per message), so nothing is
parsed twice. pandas builds the columns from the dicts in C (``pd.DataFrame(rows)``); only
columns that hold objects are taken apart again, one level at a time. Measured on the
benchmarks' shapes (2,048-message chunks): as fast as Arrow's JSON reader on flat scalars, and
many times faster on order books, whose ``[price, size]`` arrays Arrow's reader would build as
Arrow lists only for them to be turned back into Python lists one by one.

Values stay as the JSON has them: decimal strings and ISO times stay strings, arrays stay Python
lists, integers beyond 2**53 stay exact (an object column where float64 would round them).
"""

from __future__ import annotations

import json
from itertools import compress, repeat
from operator import is_

import numpy as np
import pandas as pd

__all__ = ["chunk_frame", "chunk_columns", "columns_frame", "unique_names", "EXACT_INT"]

EXACT_INT = 2**53  # the largest integer float64 holds exactly (ids beyond it would be rounded)
_ABSENT = object()


def unique_names(names: list[str]) -> list[str]:
    """Names made unique: a repeat gets ``.1``, ``.2``... (``{"a": {"b": 1}, "a.b": 2}``)."""
    seen: set[str] = set()
    unique = []
    for name in names:
        candidate, n = name, 0
        while candidate in seen:
            n += 1
            candidate = f"{name}.{n}"
        seen.add(candidate)
        unique.append(candidate)
    return unique


def _columns(rows: list[dict]) -> tuple[list[str], list[pd.Series]]:
    """Column names and values; a column holding objects becomes one column per leaf.

    Depth-first without recursion (JSON may nest 1,024 levels): the stack holds, per level, the
    prefix, the objects of that level, the rows they are in (None: every row) and its columns
    left. A level's frame is built from its objects only, then spread over all the rows.
    """
    n = len(rows)
    names: list[str] = []
    columns: list[pd.Series] = []
    stack = [("", rows, None, iter(pd.DataFrame(rows).items()))]
    while stack:
        prefix, level, positions, items = stack[-1]
        for key, series in items:
            name = prefix + key
            # (to_numpy only where it is a view: Arrow strings would be copied out as objects)
            if series.dtype == object and dict in set(map(type, series.to_numpy())):
                # (map and compress: C loops over the level's rows)
                values = list(map(dict.get, level, repeat(key), repeat(_ABSENT)))
                # A scalar (null included) beside the objects keeps its column, as it would in a
                # chunk of its own: the frame must not depend on how rows were batched.
                if set(map(type, values)) - {dict, object}:  # (_ABSENT is the only object())
                    others = [None if v.__class__ is dict or v is _ABSENT else v for v in values]
                    names.append(name)
                    columns.append(pd.Series(_spread(others, positions, n)))
                is_object = list(map(is_, map(type, values), repeat(dict)))
                inner = list(compress(range(len(values)), is_object))
                nested = list(compress(values, is_object))
                where = np.asarray(inner) if positions is None else positions[inner]
                where = None if len(where) == n else where
                stack.append((name + ".", nested, where, iter(_level_frame(nested, where, n).items())))
                break
            if series.dtype == np.float64 and _may_be_rounded(series.to_numpy()):
                series = _exact(series, _spread(list(map(dict.get, level, repeat(key))), positions, n))
            names.append(name)
            columns.append(series)
        else:
            stack.pop()
    return unique_names(names), columns


def _level_frame(objects: list[dict], positions: np.ndarray | None, n: int) -> pd.DataFrame:
    """The columns of ``objects``, in rows ``positions`` of ``n`` (missing in the others)."""
    frame = pd.DataFrame(objects)
    if positions is not None:
        frame.index = positions
        frame = frame.reindex(pd.RangeIndex(n))
    return frame


def _spread(values: list, positions: np.ndarray | None, n: int) -> list:
    """``values`` of rows ``positions`` as a list of ``n`` (None in the other rows)."""
    if positions is None:
        return values
    spread = [None] * n
    for position, value in zip(positions.tolist(), values):
        spread[position] = value
    return spread


def _may_be_rounded(values: np.ndarray) -> bool:
    """Whether a float column may hold integers beyond 2**53 that pandas rounded."""
    return bool(len(values)) and bool(np.nanmax(np.abs(values), initial=0) >= EXACT_INT)


def _exact(series: pd.Series, values: list) -> pd.Series:
    """The column as objects when integers in it are beyond what float64 holds exactly."""
    integers = compress(values, map(is_, map(type, values), repeat(int)))
    if max(map(abs, integers), default=0) > EXACT_INT:
        return pd.Series([np.nan if value is None else value for value in values], dtype=object)
    return series


def chunk_columns(rows: list[dict]) -> dict[str, pd.Series]:
    """The columns of ``chunk_frame(rows)``: each name and its values, one per dict.

    For a caller that takes the columns one by one (the archive): pandas makes a new Series each
    time a frame's column is asked for (~16 us each in pandas 3; mixed feeds have ~30 columns).
    """
    try:
        names, columns = _columns(rows)
    except UnicodeEncodeError:  # in a value or in a name
        text = json.dumps(rows, ensure_ascii=False)
        return chunk_columns(json.loads(text.encode("utf-16", "surrogatepass").decode("utf-16", "replace")))
    return dict(zip(names, columns))


def columns_frame(columns: dict[str, pd.Series], rows: int) -> pd.DataFrame:
    """The DataFrame of ``chunk_columns``' result for ``rows`` dicts (RangeIndex)."""
    frame = pd.DataFrame(columns, copy=False) if columns else pd.DataFrame()
    frame.index = pd.RangeIndex(rows)
    return frame


def chunk_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per dict (RangeIndex), columns in the order their keys first appear.

    Absent keys and JSON nulls are missing values; lone surrogates (valid in JSON, not in
    UTF-8, refused by pandas' Arrow strings) become U+FFFD.
    """
    return columns_frame(chunk_columns(rows), len(rows))
