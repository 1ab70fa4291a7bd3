"""nbws.jsontext: the package's one place for parsing and dumping JSON."""

from __future__ import annotations

import pytest

from nbws.jsontext import MAX_DEPTH, dumps, loads, pretty


def test_loads_falls_back_for_nan():
    """loads accepts what Python servers emit and orjson refuses (NaN)."""
    value = loads('{"x": NaN}')
    assert value["x"] != value["x"]


def test_loads_refuses_nesting_deeper_than_max_depth_in_one_line():
    deep = "[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1)
    with pytest.raises(ValueError, match="nested too deeply"):
        loads(deep)
    assert loads("[" * MAX_DEPTH + "]" * MAX_DEPTH) is not None


def test_dumps_is_compact_and_refuses_what_json_cannot_hold():
    assert dumps({"a": [1, "é"], "b": None}) == '{"a":[1,"é"],"b":null}'
    with pytest.raises(TypeError):
        dumps({"a": object()})


def test_pretty_indents_and_keeps_non_ascii():
    assert pretty({"a": ["é"]}) == '{\n  "a": [\n    "é"\n  ]\n}'
