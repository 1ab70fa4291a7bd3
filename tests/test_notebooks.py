"""notebooks/: every tutorial runs top to bottom in a real kernel with no error output."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient

from kernel import Kernel

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


def test_there_are_tutorials():
    """The notebooks folder holds the tutorials."""
    assert NOTEBOOKS


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs_top_to_bottom(path, tmp_path):
    """Run All, as a user would: no cell errors, no error output; committed without outputs."""
    nb = nbformat.read(path, as_version=4)
    assert all(not cell.get("outputs") for cell in nb.cells if cell.cell_type == "code")
    kernel = Kernel(tmp_path)
    try:
        client = NotebookClient(nb, km=kernel.manager, timeout=60, allow_errors=False)
        client.kc = kernel.client
        client.execute(cleanup_kc=False)
    finally:
        kernel.shutdown()
    outputs = [out for cell in nb.cells if cell.cell_type == "code" for out in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert not [o for o in outputs if o.output_type == "stream" and o.name == "stderr"]
    texts = "".join(o.get("text", "") for o in outputs) + "".join(
        str(o.get("data", {}).get("text/plain", "")) for o in outputs
    )
    assert "Traceback" not in texts
    if path.name == "01-basics.ipynb":
        assert "Hello Server!" in texts
        assert "Hello from Python!" in texts
        assert "close code must be 1000 or in 3000-4999" in texts
