"""benchmarks/run.py --quick: the benchmark runs end to end (a smoke test; no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.timeout(600)
def test_quick_benchmark_runs_every_case():
    """Every shape through every case, the targets table, the import time, the refresh curve and
    the memory checks report, and RESULTS.md is untouched."""
    results = ROOT / "benchmarks" / "RESULTS.md"
    before = results.read_text() if results.exists() else None
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick"],
        capture_output=True,
        text=True,
        timeout=580,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    out = run.stdout
    for case in ("| A ", "| B ", "| C ", "| D ", "| D' ", '| D" ', "| E "):
        assert case in out, case
    for shape in ("small", "book", "ticker", "mixed", "snapshots", "binary"):
        assert f"## {shape}: " in out and f"| {shape} | " in out, shape
    assert out.count("D / A = ") == 6 and "panel's busiest second: " in out
    assert out.count("| full collections | their seconds |") == 6
    assert "import nbws: " in out
    assert "| 10,000 |" in out  # the refresh curve
    assert "memory, book: peak growth" in out and "memory with max_rows=" in out
    assert "panel displayed in a kernel" in out and "round trip p50" in out
    assert "panel and live chart (px by sym) displayed in a kernel" in out
    assert "live chart, bytes of the updates carrying 600 new points" in out
    assert (results.read_text() if results.exists() else None) == before


def test_collections_probe_runs_every_case():
    """benchmarks/collections_probe.py: both cases, each with its full collections counted."""
    run = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "collections_probe.py"), "book", "3000", "--rounds", "1"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    lines = run.stdout.splitlines()
    assert [line.split()[0] for line in lines] == ["A", "D"]
    assert all(" full collections taking " in line for line in lines)
