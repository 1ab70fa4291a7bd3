"""notebooks/: every tutorial runs top to bottom in a real kernel with no error output."""

from __future__ import annotations

import sys
from pathlib import Path

import nbformat
import pytest
from offline import run_tutorials

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_tutorials():
    """The notebooks folder holds the tutorials."""
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom_offline(path, tmp_path):
    """Run All, as a user on a machine that is offline would (only loopback reachable): no cell
    errors, no error output, and each cell tagged ``internet`` says it was skipped; committed
    without outputs."""
    nb = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    (executed,) = run_tutorials(sys.executable, tmp_path, [path], timeout=300)
    nb = nbformat.read(executed, as_version=4)
    code = [cell for cell in nb.cells if cell.cell_type == "code"]
    assert all(cell.execution_count for cell in code)  # every cell ran
    outputs = [out for cell in code for out in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    texts = "".join(o.get("text", "") for o in outputs) + "".join(
        str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "Traceback" not in texts
    expected = {
        "01-basics.ipynb": ["Hello Server!", "Hello from magics!", "not valid JSON", "1000 or in 3000-4999"],
        "02-streaming-into-pandas.ipynb": ["book.bid", "(1000, 1000, 20000, 19001)", "not json at all"],
        "03-panel-and-magics.ipynb": ["{'from': 'alice', 'text': 'hi bob'}", "msgs/s"],
        "04-real-feeds.ipynb": ["'secret'", "HTTP status: 401", "(True, 9)", "True"],
        "05-capturing-for-days.ipynb": [
            "exit status: 0",
            "nbws record: stopped;",
            "date=",
            "(True, True)",
            "mean_price",
            "(100, 3000, 1)",
        ],
    }[path.name]
    for text in expected:
        assert text in texts, text
    charts = {"02-streaming-into-pandas.ipynb": 2, "03-panel-and-magics.ipynb": 1}.get(path.name, 0)
    assert sum(_is_chart(o) for o in outputs) == charts
    for cell in code:
        if "internet" in cell.metadata.get("tags", []):
            said = "".join(o.get("text", "") for o in cell.outputs)
            assert said.startswith("skipped, this cell needs the internet: cannot resolve host"), said


def _is_chart(output) -> bool:
    """A displayed LiveChart (its text form names it)."""
    data = output.get("data", {})
    return "application/vnd.jupyter.widget-view+json" in data and "nbws.LiveChart" in data.get(
        "text/plain", ""
    )


def test_internet_cells_are_tagged():
    """Only tagged cells name a host other than the demo server's loopback."""
    for path in NOTEBOOKS:
        for cell in nbformat.read(path, as_version=4).cells:
            if cell.cell_type == "code" and "wss://" in cell.source:
                assert "internet" in cell.metadata.get("tags", []), (path.name, cell.source[:60])


@pytest.mark.timeout(300)
def test_a_tutorial_runs_all_in_jupyterlab(tmp_path):
    """03 with Run All in a real JupyterLab in headless Chromium: every cell runs, no error output,
    the panels and the chart are shown."""
    import shutil

    from lab import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, JupyterLab, chromium_available, run_all_cells
    from playwright.sync_api import TimeoutError as PlaywrightTimeout
    from playwright.sync_api import sync_playwright

    missing = chromium_available()
    assert missing is None, missing
    root = tmp_path / "lab"
    root.mkdir()
    name = "03-panel-and-magics.ipynb"
    shutil.copyfile(Path(__file__).parent.parent / "notebooks" / name, root / name)
    code_cells = sum(1 for cell in nbformat.read(root / name, as_version=4).cells if cell.cell_type == "code")
    ARTIFACTS.mkdir(exist_ok=True)
    lab = JupyterLab(root)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1000})
            run_all_cells(page, lab, name)
            # Every code cell gets an execution count once it ran.
            try:
                page.wait_for_function(
                    f"""() => [...document.querySelectorAll('.jp-CodeCell .jp-InputPrompt')]
                              .filter(p => /\\[\\d+\\]/.test(p.innerText)).length === {code_cells}""",
                    timeout=60_000,
                )
            except PlaywrightTimeout:
                page.screenshot(path=str(ARTIFACTS / "tutorial-03-failure.png"), full_page=True)
                shown = page.locator(".jp-OutputArea-output").all_inner_texts()
                raise AssertionError(f"not every cell ran; outputs: {shown}") from None
            page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=60_000)
            page.wait_for_timeout(1000)
            errors = page.locator(
                "[data-mime-type='application/vnd.jupyter.stderr'],"
                " [data-mime-type='application/vnd.jupyter.error']"
            )
            page.screenshot(path=str(ARTIFACTS / "tutorial-03.png"))
            assert errors.count() == 0, errors.all_inner_texts()
            assert page.locator(".nbws-head").count() >= 3  # feed, echo, feed again (closed)
            assert page.locator(".nbws-chart-canvas").count() == 1  # %ws_plot's chart
            chart = page.locator(".nbws-chart").first
            chart.scroll_into_view_if_needed()
            chart.screenshot(path=str(ARTIFACTS / "tutorial-03-chart.png"))
            assert "closed 4000 done for now" in page.inner_text(".jp-Notebook")
            browser.close()
    finally:
        lab.close()
