"""The ``nbws`` command line: ``nbws serve`` runs the demo server, ``nbws tutorial`` the tutorials,
``nbws record`` captures a feed into an archive."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

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


def _record(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .jsontext import parse_json_payload
    from .record import Recording, parse_header, run
    from .validate import validate_url

    try:
        validate_url(args.url)
        sends = [parse_json_payload(text) for text in args.send]
        headers = [parse_header(text) for text in args.header]
    except ValueError as exc:
        parser.error(str(exc))
    if args.rotate <= 0 or (args.duration is not None and args.duration <= 0):
        parser.error("--rotate and --duration take a positive number of seconds")
    out = Path(args.out).expanduser()
    if out.exists() and not out.is_dir():
        parser.error(f"--out {args.out}: that is a file; give a folder (created if missing)")
    job = Recording(args.url, out, sends, headers, args.reconnect, args.rotate, args.duration)
    return run(job)


def _record_parser(commands: Any) -> argparse.ArgumentParser:
    from .record import EXIT_CODES

    epilog = "exit status:\n" + "\n".join(f"  {code}  {text}" for code, text in EXIT_CODES.items())
    record = commands.add_parser(
        "record",
        help="capture a feed into a Parquet archive (read it with nbws.read or DuckDB)",
        description="Capture every message of URL into a Hive-partitioned Parquet dataset in "
        "--out (date=YYYY-MM-DD/hour=HH/part-*.parquet), until SIGTERM or Ctrl-C (which write "
        "everything received), --duration, or the end of the stream.",
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    record.add_argument("url", help="ws:// or wss:// URL of the feed")
    record.add_argument("--out", required=True, help="folder of the archive (created if missing)")
    record.add_argument(
        "--send",
        action="append",
        default=[],
        metavar="JSON",
        help="a JSON message to send on every open, e.g. a subscription (repeatable)",
    )
    record.add_argument(
        "-H", "--header", action="append", default=[], metavar="'K: V'", help="an HTTP header (repeatable)"
    )
    record.add_argument(
        "--reconnect",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="reconnect when the connection drops (default: yes)",
    )
    record.add_argument(
        "--rotate",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="start a new file this often (default 60)",
    )
    record.add_argument("--duration", type=float, metavar="SECONDS", help="stop after this long")
    return record


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
    record = _record_parser(commands)
    args, rest = parser.parse_known_args(argv)
    if args.command == "tutorial":
        return _tutorial(args, rest)
    if rest:
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "record":
        return _record(args, record)
    return _serve(args)


if __name__ == "__main__":
    sys.exit(main())
