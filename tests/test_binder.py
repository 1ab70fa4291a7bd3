"""binder/: its pinned requirements install into a fresh venv, and every tutorial runs there."""

from __future__ import annotations

import os
import subprocess
import venv
from pathlib import Path

import pytest
from offline import run_tutorials

ROOT = Path(__file__).parent.parent
BINDER_VENV = ROOT / ".venv-binder"


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
    tutorials = sorted((ROOT / "notebooks").glob("*.ipynb"))
    run_tutorials(str(python), tmp_path, tutorials, env=env, cwd=tmp_path, timeout=800)  # Run All, offline
    where = run(str(python), "-c", "import nbws; print(nbws.__file__)", cwd=tmp_path)
    assert where.startswith(str(BINDER_VENV))  # installed by postBuild, not found in the checkout
