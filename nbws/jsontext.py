"""JSON for the whole package, as browsers see it: parsing what arrives, checking what a user
typed before it is sent, and dumping (compact for the wire, indented for people).
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["loads", "fast_loads", "MAX_DEPTH", "parse_json_payload", "dumps", "pretty"]

# A JSON string, or one of the constants Python's json reads but JSON.parse refuses.
_STRING_OR_CONSTANT = re.compile(r'"(?:[^"\\]|\\.)*"|(-?Infinity|NaN)', re.DOTALL)
_JSON_SPACE = " \t\n\r"


class _NotJSON(Exception):
    """A constant (NaN, Infinity, -Infinity) that Python's json reads and JSON does not have."""


def _refuse_constant(word: str) -> Any:
    raise _NotJSON(word)


def parse_json_payload(text: str) -> str:
    """Check that ``text`` is JSON as a browser's ``JSON.parse`` reads it; return what to send.

    Returns ``text`` without surrounding whitespace. Raises ``ValueError`` with a one-line
    message saying what is wrong and where (``not valid JSON (Expecting value at line 1 column
    8)``). ``NaN``, ``Infinity`` and ``-Infinity`` are refused: Python's json accepts them,
    JSON (and so every browser and most servers) does not.
    """
    try:
        json.loads(text, parse_constant=_refuse_constant, parse_int=len, parse_float=len)
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except _NotJSON as exc:
        # Everything before it parsed, so the first constant outside a string is the one.
        at = next(m.start(1) for m in _STRING_OR_CONSTANT.finditer(text) if m.group(1))
        line, column = text.count("\n", 0, at) + 1, at - text.rfind("\n", 0, at)
        raise ValueError(
            f"not valid JSON ({exc} at line {line} column {column}: JSON has no NaN or Infinity; "
            "use null or a string)"
        ) from None
    except RecursionError:
        raise ValueError("too deeply nested to check as JSON") from None
    return text.strip(_JSON_SPACE)


try:
    from orjson import OPT_NON_STR_KEYS, OPT_SERIALIZE_NUMPY
    from orjson import dumps as _orjson_dumps

    def dumps(obj: Any) -> str:
        """``obj`` as compact JSON text (``JSON.stringify``); TypeError if it cannot be."""
        return _orjson_dumps(obj, option=OPT_NON_STR_KEYS | OPT_SERIALIZE_NUMPY).decode()
except ImportError:  # pragma: no cover

    def dumps(obj: Any) -> str:
        """``obj`` as compact JSON text (``JSON.stringify``); TypeError if it cannot be."""
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)


def pretty(obj: Any) -> str:
    """``obj`` as indented JSON text for people (non-ASCII kept as is)."""
    return json.dumps(obj, indent=2, ensure_ascii=False)


try:  # orjson is a dependency; the fallback keeps a broken install usable.
    from orjson import loads as fast_loads
except ImportError:  # pragma: no cover
    fast_loads = json.loads


def loads(data: str | bytes) -> Any:
    """Parse JSON like ``JSON.parse``; raises ``ValueError`` (``json.JSONDecodeError`` mostly).

    orjson first (fast); the standard library second, so that what Python servers often send
    (``NaN``) still parses. Values nested deeper than ``MAX_DEPTH`` levels are refused by both.
    """
    try:
        return fast_loads(data)
    except ValueError as exc:
        if not _too_deep(exc):
            try:
                value = json.loads(data)
            except RecursionError:
                value = None
            else:
                if not _deeper_than(value, MAX_DEPTH):
                    return value
        raise ValueError(f"nested too deeply to parse (more than {MAX_DEPTH:,} levels)") from None


# orjson's limit, kept for the standard library's results too: deeper values make pandas crawl,
# recursive code overflow, and Arrow's JSON reader crash.
MAX_DEPTH = 1024


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether arrays and objects nest more than ``limit`` levels in ``value`` (no recursion)."""
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else None
        if children is not None:
            if depth > limit:
                return True
            stack.extend((child, depth + 1) for child in children)
    return False


def _too_deep(exc: ValueError) -> bool:
    """Whether orjson refused a value for its nesting (the standard library would recurse on)."""
    return "depth limit" in str(exc) or "ecursion" in str(exc)
