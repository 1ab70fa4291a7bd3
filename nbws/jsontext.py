"""JSON text as browsers see it: checking what a user typed before it is sent, and dumping.

(Parsing received messages lives in ``nbws.events.loads``.)
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["parse_json_payload", "dumps"]

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
