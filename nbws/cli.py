"""The ``nbws`` command line: ``nbws serve`` runs the demo server, ``nbws tutorial`` the tutorials."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

__all__ = ["main", "tutorial_notebooks"]


def tutorial_notebooks() -> list[Path]:
    """The tutorial notebooks shipped with nbws (in the wheel, or the checkout's notebooks/)."""
    here = Path(__file__).parent
    for folder in (here / "notebooks", here.parent / "notebooks"):
        found = sorted(folder.glob("*.ipynb"))
        if found:
            return found
    return []


def _serve(args: argparse.Namespace) -> int:
    from .demo import run

    try:
        run(args.host, args.port)
    except OSError as exc:
        reason = exc.strerror or exc
        print(f"nbws serve: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    return 0


def _tutorial(args: argparse.Namespace, lab_args: list[str]) -> int:
    """Copy the tutorials into ``--dir`` (keeping copies already there) and open JupyterLab on them."""
    if importlib.util.find_spec("jupyterlab") is None:
        print("nbws tutorial: JupyterLab is not installed; pip install 'nbws[lab]'", file=sys.stderr)
        return 1
    notebooks = tutorial_notebooks()
    if not notebooks:  # pragma: no cover - a broken install
        print("nbws tutorial: no tutorial notebooks found in this installation", file=sys.stderr)
        return 1
    folder = Path(args.dir).expanduser().resolve()
    folder.mkdir(parents=True, exist_ok=True)
    for notebook in notebooks:
        target = folder / notebook.name
        if target.exists():
            print(f"nbws tutorial: keeping your copy of {target.name}")
        else:
            shutil.copyfile(notebook, target)
    command = [sys.executable, "-m", "jupyterlab", f"--ServerApp.root_dir={folder}", f"--port={args.port}"]
    if args.no_browser:
        command.append("--no-browser")
    if hasattr(os, "getuid") and os.getuid() == 0:
        command.append("--allow-root")  # JupyterLab refuses root otherwise (containers, CI)
    print(f"nbws tutorial: opening JupyterLab on {folder}", flush=True)
    try:
        return subprocess.call(command + lab_args)
    except KeyboardInterrupt:
        return 0


def main(argv: list[str] | None = None) -> int:
    """Run the ``nbws`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="nbws", description="WebSockets in Jupyter notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the demo WebSocket server (/echo, /ticker, /chat, ...)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    tutorial = commands.add_parser(
        "tutorial",
        help="copy the tutorials to a folder and open JupyterLab on them",
        description="Other options are passed on to JupyterLab (e.g. --ServerApp.token=...).",
    )
    tutorial.add_argument(
        "--dir", default="nbws-tutorials", help="working folder (default: ./nbws-tutorials)"
    )
    tutorial.add_argument("--port", type=int, default=8888, help="JupyterLab's port (default: 8888)")
    tutorial.add_argument("--no-browser", action="store_true", help="do not open a web browser")
    args, rest = parser.parse_known_args(argv)
    if args.command == "tutorial":
        return _tutorial(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
