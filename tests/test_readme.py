"""README.md: its Python examples run as written against `nbws serve` and print what it says."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

README = Path(__file__).parent.parent / "README.md"
# A python block, optionally followed (after some prose) by "It prints" and a text block.
BLOCK = re.compile(
    r"```python\n(?P<code>.*?)```(?:(?:(?!```python).)*?It prints.*?```text\n(?P<out>.*?)```)?", re.S
)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00:00")


def readme_examples() -> list[tuple[str, str | None]]:
    return [(m["code"], m["out"]) for m in BLOCK.finditer(README.read_text())]


@pytest.fixture(scope="module")
def nbws_serve():
    """`nbws serve` on a free port, as a user would run it (but not on 8765, which may be busy)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbws", "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    url = re.search(r"ws://127\.0\.0\.1:\d+", proc.stdout.readline())[0]
    yield url
    proc.send_signal(signal.SIGINT)
    proc.wait(10)


def test_readme_has_the_guide_examples():
    """The README shows both Node.js guide examples with their output."""
    examples = readme_examples()
    assert len(examples) >= 3
    assert sum(out is not None for _, out in examples) >= 2


@pytest.mark.parametrize("index", range(len(readme_examples())))
def test_readme_example_runs_as_written(nbws_serve, index):
    """Each example runs against nbws serve; where the README shows output, it matches."""
    code, expected = readme_examples()[index]
    code = code.replace("ws://localhost:8765", nbws_serve.replace("127.0.0.1", "localhost"))
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    if expected is not None:
        got = [line.rstrip() for line in TIMESTAMP.sub("<time>", result.stdout).splitlines()]
        want = [line.rstrip() for line in TIMESTAMP.sub("<time>", expected).splitlines()]
        # Column alignment depends on the timestamp's digits; compare words, not spaces.
        assert [line.split() for line in got] == [line.split() for line in want]
