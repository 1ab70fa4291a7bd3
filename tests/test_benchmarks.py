"""benchmarks/run.py --quick: the benchmark runs end to end (a smoke test; no timing asserted)."""

from __future__ import annotations

import random
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


def test_the_median_interval_is_the_textbook_one_and_covers_the_median_as_often_as_it_says():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        from run import median_interval
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    # The ranks in tables of the sign test's interval: 6th and 16th of 21, 14th and 28th of 41.
    assert median_interval([float(i) for i in range(21, 0, -1)]) == (6.0, 16.0)
    assert median_interval([float(i) for i in range(1, 42)]) == (14.0, 28.0)
    assert median_interval([0.93]) == (0.93, 0.93)
    # Pair ratios are skewed (a slow spell on one side); the true median of this one is 1.0.
    rng = random.Random(14)
    trials = 2_000
    covered = 0
    for _ in range(trials):
        low, high = median_interval([rng.lognormvariate(0.0, 0.2) for _ in range(41)])
        covered += low <= 1.0 <= high
    assert 0.95 <= covered / trials <= 0.985  # (exactly 0.972 for 41 values)
