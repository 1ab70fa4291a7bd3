"""README.md: its examples run as written against `nbws serve` and print what it says.

Python blocks run as scripts; a run of ipython blocks runs cell by cell in a real kernel.
Where a "It prints" text block follows, the output must match it (times aside).
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from kernel import Kernel

README = Path(__file__).parent.parent / "README.md"
FENCE = re.compile(r"```(?P<lang>\w*)\n(?P<body>.*?)```", re.S)
TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+\+00:00")


def examples(lang: str) -> list[tuple[list[str], str | None]]:
    """Groups of consecutive ``lang`` blocks, each with the "It prints" block after it, if any."""
    groups: list[tuple[list[str], str | None]] = []
    current: list[str] = []
    text = README.read_text()
    last_end = 0
    for match in FENCE.finditer(text):
        between, last_end = text[last_end : match.start()], match.end()
        if match["lang"] == lang:
            if current and "##" in between:  # a new section starts a new example
                groups.append((current, None))
                current = []
            current.append(match["body"])
        elif current and match["lang"] == "text" and "It prints" in between:
            groups.append((current, match["body"]))
            current = []
        elif current and match["lang"] != lang:
            groups.append((current, None))
            current = []
    if current:
        groups.append((current, None))
    return groups


def same_output(got: str, expected: str) -> None:
    """Compare words line by line (column alignment depends on the timestamp's digits)."""

    def words(text: str) -> list[list[str]]:
        return [line.split() for line in TIMESTAMP.sub("<time>", text).splitlines() if line.strip()]

    assert words(got) == words(expected)


@pytest.fixture(scope="module")
def nbws_serve():
    """`nbws serve` on a free port, as a user would run it (8765 may be busy here)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbws", "serve", "--port", "0"], stdout=subprocess.PIPE, text=True
    )
    url = re.search(r"ws://127\.0\.0\.1:\d+", proc.stdout.readline())[0]
    yield url.replace("127.0.0.1", "localhost")
    proc.send_signal(signal.SIGINT)
    proc.wait(10)


def test_readme_has_the_guide_examples_both_ways():
    """Both Node.js guide examples, as Python and as magics, each with its output."""
    assert sum(out is not None for _, out in examples("python")) >= 2
    assert sum(out is not None for _, out in examples("ipython")) >= 2


@pytest.mark.parametrize("index", range(len(examples("python"))))
def test_python_example_runs_as_written(nbws_serve, index):
    """Each Python example runs as a script against nbws serve; shown output matches."""
    (code,), expected = examples("python")[index]
    code = code.replace("ws://localhost:8765", nbws_serve)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    if expected is not None:
        same_output(result.stdout, expected)


@pytest.mark.parametrize("index", range(len(examples("ipython"))))
def test_magic_example_runs_as_written(nbws_serve, index, tmp_path):
    """Each magics example runs cell by cell in a kernel; what it shows matches."""
    cells, expected = examples("ipython")[index]
    kernel = Kernel(tmp_path)
    try:
        if "%load_ext" not in cells[0]:
            kernel.run("%load_ext nbws")
        ids = []
        for cell in cells:
            msg_id = kernel.submit(cell.replace("ws://localhost:8765", nbws_serve))
            kernel.wait([msg_id])
            assert kernel.reply(msg_id)["status"] == "ok", cell
            ids.append(msg_id)
        kernel.drain(0.3)
        shown = "".join(
            m["content"].get("text") or m["content"]["data"]["text/plain"] + "\n"
            for m in kernel.iopub
            if m["msg_type"] in ("stream", "display_data", "execute_result")
        )
    finally:
        kernel.shutdown()
    if expected is not None:
        same_output(shown.replace(nbws_serve, "ws://localhost:8765"), expected)
