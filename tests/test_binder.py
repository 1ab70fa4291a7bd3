"""binder/: its pinned requirements install into a fresh venv, and every tutorial runs there."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
BINDER_VENV = ROOT / ".venv-binder"

RUN_TUTORIALS = """
import sys, tempfile
from pathlib import Path
sys.path.insert(0, sys.argv[1])
import nbformat
from nbclient import NotebookClient
from kernel import Kernel
for path in sorted(Path(sys.argv[2]).glob("*.ipynb")):
    nb = nbformat.read(path, as_version=4)
    nb.cells = [c for c in nb.cells if "internet" not in c.metadata.get("tags", [])]
    kernel = Kernel(Path(tempfile.mkdtemp()))
    try:
        client = NotebookClient(nb, km=kernel.manager, timeout=120)
        client.kc = kernel.client
        client.execute(cleanup_kc=False)
    finally:
        kernel.shutdown()
    errors = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    assert not errors, (path.name, errors)
    print("ran", path.name, flush=True)
"""


@pytest.mark.timeout(900)
def test_binder_requirements_install_and_the_tutorials_run(tmp_path):
    """As repo2docker would: pip install -r binder/requirements.txt, binder/postBuild, Run All."""
    python = BINDER_VENV / "bin" / "python"
    if not python.exists():
        venv.create(BINDER_VENV, with_pip=True)
    env = {
        **os.environ,
        "PATH": f"{python.parent}{os.pathsep}{os.environ['PATH']}",
        "VIRTUAL_ENV": str(BINDER_VENV),
    }
    env.pop("PYTHONPATH", None)

    def run(*command: str, cwd: Path = ROOT) -> str:
        result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=800)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result.stdout

    run(str(python), "-m", "pip", "install", "--quiet", "-r", "binder/requirements.txt")
    run(str(python), "-m", "pip", "uninstall", "--quiet", "--yes", "nbws")  # this checkout, fresh
    run("bash", "binder/postBuild")
    out = run(str(python), "-c", RUN_TUTORIALS, str(ROOT / "tests"), str(ROOT / "notebooks"))
    tutorials = sorted(p.name for p in (ROOT / "notebooks").glob("*.ipynb"))
    assert out.split() == [word for name in tutorials for word in ("ran", name)]
    where = run(str(python), "-c", "import nbws; print(nbws.__file__)", cwd=tmp_path)
    assert where.startswith(str(BINDER_VENV))  # installed by postBuild, not found in the checkout
