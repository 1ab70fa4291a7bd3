"""benchmarks/run.py --quick: the benchmark runs end to end (a smoke test; no timing asserted)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent


@pytest.mark.timeout(600)
def test_quick_benchmark_runs_every_case():
    """Every case, the refresh curve and both memory checks report, and RESULTS.md is untouched."""
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
    assert "D / A = " in out and "D / B = " in out
    assert "| 10,000 |" in out  # the refresh curve
    assert "memory: peak growth" in out and "memory with max_rows=" in out
    assert "panel displayed in a kernel" in out and "round trip p50" in out
    assert (results.read_text() if results.exists() else None) == before
