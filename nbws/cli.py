"""The ``nbws`` command line: ``nbws serve`` runs the demo server."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Run the ``nbws`` command; returns the exit status."""
    parser = argparse.ArgumentParser(prog="nbws", description="WebSockets in Jupyter notebooks.")
    commands = parser.add_subparsers(dest="command", required=True)
    serve = commands.add_parser("serve", help="run the demo WebSocket server (/echo, /ticker, /chat, ...)")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8765, help="port (default: 8765; 0 picks a free one)")
    args = parser.parse_args(argv)
    if args.command == "serve":
        from .demo import run

        try:
            run(args.host, args.port)
        except OSError as exc:
            reason = exc.strerror or exc
            print(f"nbws serve: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
