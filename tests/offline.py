"""Run All on the tutorials as on a machine that is offline, for the tests.

``offline(argv)`` runs a command in a network namespace of its own (util-linux's ``unshare``)
where only loopback exists: the demo server on 127.0.0.1 answers, any other address is
unreachable at once (no packet leaves the machine), so the cells tagged ``internet`` meet an
unreachable network, as a user's offline laptop would make them.

    python tests/offline.py OUT_DIR NOTEBOOK...

executes each notebook top to bottom in a fresh kernel of this interpreter (as "Run All" does:
it stops at the first error), writes it with its outputs to OUT_DIR and prints ``ran NAME``.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).parent


def offline(argv: list[str]) -> list[str]:
    """``argv`` wrapped to run with no network but loopback."""
    missing = [tool for tool in ("unshare", "ip") if shutil.which(tool) is None]
    assert not missing, f"offline runs need {missing}: apt-get install util-linux iproute2"
    return [
        "unshare",
        "--map-root-user",
        "--net",
        "sh",
        "-c",
        'ip link set lo up && exec "$@"',
        "offline",
        *argv,
    ]


def run_tutorials(python: str, out_dir: Path, notebooks: list[Path], **run: object) -> list[Path]:
    """Run All on ``notebooks`` offline, with ``python``'s kernel; the executed notebooks."""
    command = offline([python, str(Path(__file__).resolve()), str(out_dir), *map(str, notebooks)])
    result = subprocess.run(command, capture_output=True, text=True, **run)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    assert result.stdout.split() == [word for path in notebooks for word in ("ran", path.name)], result.stdout
    return [out_dir / path.name for path in notebooks]


def main(out_dir: str, *notebooks: str) -> None:
    import nbformat
    from nbclient import NotebookClient

    sys.path.insert(0, str(HERE))
    from kernel import Kernel

    for path in map(Path, notebooks):
        nb = nbformat.read(path, as_version=4)
        kernel = Kernel(Path(tempfile.mkdtemp()))
        try:
            client = NotebookClient(nb, km=kernel.manager, timeout=120, allow_errors=False)
            client.kc = kernel.client
            client.execute(cleanup_kc=False)
        finally:
            kernel.shutdown()
        nbformat.write(nb, Path(out_dir) / path.name)
        print("ran", path.name, flush=True)


if __name__ == "__main__":
    main(*sys.argv[1:])
