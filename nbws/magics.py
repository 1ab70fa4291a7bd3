"""The ``%ws_*`` magics: a thin layer over nbws's Python API, one small magic per verb.

``%load_ext nbws`` registers them. Mistakes a user can fix (bad URL, unknown connection, bad
JSON, closed connection, bad close code) raise ``UsageError``: one line, no traceback.
"""

from __future__ import annotations

import argparse
import re
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

import pandas as pd
from IPython.core.error import UsageError
from IPython.core.magic import Magics, line_cell_magic, line_magic, magics_class, no_var_expand
from IPython.core.magic_arguments import argument, magic_arguments
from IPython.display import display

import nbws

from .jsontext import dumps, parse_json_payload
from .redact import redact_url

__all__ = [
    "NbwsMagics",
    "SendLine",
    "parse_send_line",
    "parse_json_payload",
    "load_ipython_extension",
    "unload_ipython_extension",
]

_IDENTIFIER = re.compile(r"[A-Za-z_]\w*")
# Bare words json.loads reads as values: never a connection name in %ws_send.
_JSON_WORDS = frozenset({"true", "false", "null", "NaN", "Infinity"})


@contextmanager
def _usage_errors(verb: str, *also: type[Exception]) -> Iterator[None]:
    """Turn nbws's own errors into one-line UsageErrors; anything else keeps its traceback.

    nbws's own errors are NbwsError and the TimeoutError of its waits; ``also`` adds the
    ValueError nbws raises for a bad argument, for the calls that validate arguments.
    """
    try:
        yield
    except (nbws.NbwsError, TimeoutError, *also) as exc:
        raise UsageError(f"%{verb}: {exc}") from None


def parse_argstring(magic: Any, line: str) -> Any:
    """Parse a magic's line with its @magic_arguments parser, quotes removed as in a shell.

    (IPython's own parse_argstring keeps the quotes: -H 'Key: value' would send "'Key".)
    """
    try:
        argv = shlex.split(line)
    except ValueError as exc:
        raise UsageError(f"%{magic.__name__}: {exc} in {line.strip()!r}") from None
    return magic.parser.parse_args(argv)


def _connection_name(word: str) -> str:
    """argparse type of %ws_send's NAME: an identifier that is not a JSON word."""
    if not _IDENTIFIER.fullmatch(word) or word in _JSON_WORDS:
        raise argparse.ArgumentTypeError(f"{word!r} is not a connection name")
    return word


class SendLine(NamedTuple):
    """A parsed ``%ws_send`` line: the connection, "json" | "text" | "expr", the payload as typed."""

    name: str | None
    mode: str
    payload: str


@magics_class
class NbwsMagics(Magics):
    """The %ws_* verbs. One instance per shell; it remembers the last connection it made."""

    def __init__(self, shell: Any) -> None:
        super().__init__(shell)
        self.last: nbws.WebSocket | None = None

    # -- finding the connection --------------------------------------------------------------

    def _connection(self, name: str | None, verb: str) -> nbws.WebSocket:
        """The connection called ``name``; without a name, the only live one (or the last made)."""
        live = nbws.connections()
        if name:
            ws = live.get(name)
            if ws is None:
                bound = self.shell.user_ns.get(name)
                if isinstance(bound, nbws.WebSocket):
                    return bound  # a closed connection still has its frame and messages
                known = ", ".join(sorted(live)) or "none open"
                raise UsageError(f"%{verb}: no connection named {name!r} (open: {known})")
            return ws
        if len(live) == 1:
            return next(iter(live.values()))
        if len(live) > 1:
            names = ", ".join(sorted(live))
            raise UsageError(f"%{verb}: several connections are open ({names}); name one: %{verb} NAME ...")
        if self.last is not None:
            return self.last
        raise UsageError(f"%{verb}: no connection yet; open one with %ws_connect URL")

    # -- verbs -------------------------------------------------------------------------------

    @line_magic
    @magic_arguments()
    @argument("url", help="ws:// or wss:// URL; {var} and $var expand as in other magics")
    @argument("--name", default="ws", help="variable to bind the connection to (default: ws)")
    @argument(
        "-H",
        "--header",
        action="append",
        default=[],
        metavar="'KEY: VALUE'",
        help="HTTP header for the handshake; repeat for more",
    )
    @argument("--subprotocol", action="append", default=[], help="subprotocol to offer; repeat for more")
    @argument("--reconnect", action="store_true", help="reconnect with backoff when the connection drops")
    @argument("--max-rows", type=int, default=None, help="keep only the newest N rows and messages")
    @argument("--no-panel", action="store_true", help="do not display the live panel")
    @argument(
        "--transport",
        default=None,
        help='websockets (the default) or picows (compiled, pip install "nbws[fast]")',
    )
    def ws_connect(self, line: str) -> None:
        """Connect to a WebSocket server, bind the connection to a variable (default ``ws``), show its panel.

        Waits until the connection is open, so a failure shows in this cell. Re-running the
        cell replaces the connection of that name instead of leaking it.
        """
        args = parse_argstring(self.ws_connect, line)
        if not _IDENTIFIER.fullmatch(args.name):
            raise UsageError(f"%ws_connect: --name must be a Python identifier, not {args.name!r}")
        headers = []
        for number, header in enumerate(args.header, 1):
            key, sep, value = header.partition(":")
            if not sep or not key.strip():  # not echoed: it may hold a token
                raise UsageError(
                    f"%ws_connect: each -H is 'Key: value' (like -H 'Authorization: Bearer TOKEN'); "
                    f"header {number} has no 'Key:'"
                )
            headers.append((key.strip(), value.strip()))
        with _usage_errors("ws_connect", ValueError, ImportError):
            ws = nbws.connect(
                args.url,
                name=args.name,
                headers=headers,
                subprotocols=args.subprotocol,
                reconnect=args.reconnect,
                max_rows=args.max_rows,
                transport=args.transport,
            )
        self.shell.user_ns[args.name] = ws
        self.last = ws
        try:
            ws.wait_open()
        except nbws.ConnectError as exc:
            if not args.reconnect:
                raise UsageError(f"%ws_connect: {exc}") from None
            print(f"%ws_connect: {exc}")
        if not args.no_panel:
            display(ws)

    @no_var_expand
    @line_cell_magic
    @magic_arguments()
    @argument(
        "name",
        nargs="?",
        type=_connection_name,
        metavar="NAME",
        help="connection, first if given (optional when only one is open)",
    )
    @argument(
        "--text",
        nargs=argparse.REMAINDER,
        help="send the rest of the line (or with %%%%ws_send the cell body) as raw text, unchecked",
    )
    @argument(
        "--expr",
        nargs=argparse.REMAINDER,
        help="evaluate the rest of the line as a Python expression and send its value as JSON",
    )
    @argument(
        "payload",
        nargs="*",
        metavar="PAYLOAD",
        help="JSON to send: the rest of the line exactly as typed ({...} and $x are never expanded), "
        "checked before sending; with %%%%ws_send, the cell body",
    )
    def ws_send(self, line: str, cell: str | None = None) -> None:
        """Send JSON (checked before sending), raw text with --text, or a Python value with --expr.

        ``%ws_send [NAME] PAYLOAD``, ``%ws_send [NAME] --text TEXT``, ``%ws_send [NAME] --expr EXPR``:
        the payload is the rest of the line, exactly as typed. ``%%ws_send [NAME] [--text]``
        sends the cell body.
        """
        name, mode, payload = parse_send_line(line)
        if cell is not None:
            if mode == "expr":
                raise UsageError("%%ws_send: --expr is for the line magic: %ws_send --expr EXPR")
            if payload:
                raise UsageError(
                    "%%ws_send: the cell body is the payload; the line takes only NAME and --text"
                )
            payload = cell[:-1] if cell.endswith("\n") else cell
        if not payload.strip() and mode != "text":
            raise UsageError("%ws_send: nothing to send; usage: %ws_send [NAME] PAYLOAD")
        if mode == "expr":
            try:
                value = self.shell.ev(payload)
            except Exception as exc:  # noqa: BLE001 - the user's expression: say what failed
                raise UsageError(f"%ws_send: --expr {payload!r} failed: {exc!r}") from None
            try:
                payload = dumps(value)  # send_json's own encoding, so the check cannot drift
            except TypeError as exc:  # only the encoding is in this try
                raise UsageError(
                    f"%ws_send: --expr {payload!r} is not a value JSON can hold ({exc}); nothing was sent"
                ) from None
        elif mode == "json":
            try:
                payload = parse_json_payload(payload)
            except ValueError as exc:
                raise UsageError(
                    f"%ws_send: {exc}; nothing was sent. Use --text to send it as text."
                ) from None
        ws = self._connection(name, "ws_send")
        with _usage_errors("ws_send"):
            ws.send(payload)

    @line_magic
    @magic_arguments()
    @argument("name", nargs="?", help="connection (optional when only one is open)")
    @argument("-n", "--count", type=int, default=1, help="how many new messages to wait for (default 1)")
    @argument("--timeout", type=float, default=None, help="give up after this many seconds")
    def ws_wait(self, line: str) -> None:
        """Block until COUNT new messages arrived (safe under Run All; Ctrl-C stops it).

        "New" counts from your last %ws_send (or the previous %ws_wait, or the connection's
        start), so a reply that came back before this cell ran is not missed.
        """
        args = parse_argstring(self.ws_wait, line)
        ws = self._connection(args.name, "ws_wait")
        with _usage_errors("ws_wait", ValueError):
            ws.wait_for_messages(args.count, timeout=args.timeout)

    @line_magic
    @magic_arguments()
    @argument("name", nargs="?", help="connection (optional when only one is open)")
    def ws_frame(self, line: str) -> pd.DataFrame:
        """Return the connection's DataFrame: ``df = %ws_frame feed``."""
        args = parse_argstring(self.ws_frame, line)
        return self._connection(args.name, "ws_frame").frame

    @line_magic
    @magic_arguments()
    def ws_list(self, line: str) -> pd.DataFrame:
        """Return a DataFrame of the open connections: name, url, state, received, sent, msgs/s."""
        parse_argstring(self.ws_list, line)
        rows = []
        for name, ws in nbws.connections().items():
            stats = ws.stats
            rows.append(
                {
                    "name": name,
                    "url": redact_url(ws.url),
                    "state": stats["state"],
                    "received": stats["received"],
                    "sent": stats["sent"],
                    "msgs/s": round(stats["rate"], 1),
                }
            )
        columns = ["name", "url", "state", "received", "sent", "msgs/s"]
        return pd.DataFrame(rows, columns=columns).set_index("name")

    @line_magic
    @magic_arguments()
    @argument("name", nargs="?", help="connection (optional when only one is open)")
    @argument("--all", action="store_true", help="close every connection")
    @argument("--code", type=int, default=1000, help="close code: 1000 or 3000-4999 (default 1000)")
    @argument("--reason", default="", help="close reason, at most 123 UTF-8 bytes")
    def ws_close(self, line: str) -> None:
        """Close a connection (or all with --all); waits until it is closed."""
        args = parse_argstring(self.ws_close, line)
        with _usage_errors("ws_close", ValueError):
            if args.all:
                if args.name:
                    raise UsageError("%ws_close: give a NAME or --all, not both")
                nbws.close_all(args.code, args.reason)
            else:
                self._connection(args.name, "ws_close").close(args.code, args.reason)

    @line_magic
    @magic_arguments()
    @argument("name", nargs="?", help="connection (optional when only one is open)")
    def ws_panel(self, line: str) -> None:
        """Show the connection's live panel again."""
        args = parse_argstring(self.ws_panel, line)
        display(self._connection(args.name, "ws_panel"))

    @line_magic
    @magic_arguments()
    @argument(
        "words",
        nargs="+",
        metavar="[NAME] COLUMN",
        help="connection (optional when only one is open), then the columns to plot (dotted names "
        "such as book.bid too)",
    )
    @argument("--by", help="one series per value of this column (e.g. symbol)")
    @argument(
        "--window",
        default="10000",
        help="what each series keeps: a point count or a span such as 30s, 5min, 2h (default: 10000)",
    )
    def ws_plot(self, line: str) -> None:
        """Show a live chart of columns against received_at: ``%ws_plot price --by symbol``
        (``chart = ws.plot(...)`` gives the chart object)."""
        args = parse_argstring(self.ws_plot, line)
        words = args.words
        name = None
        if len(words) > 1 and self._names_a_connection(words[0]):
            name, words = words[0], words[1:]
        ws = self._connection(name, "ws_plot")
        window = int(args.window) if args.window.isdigit() else args.window
        with _usage_errors("ws_plot", ValueError):
            chart = ws.plot(words, by=args.by, window=window)
        display(chart)

    def _names_a_connection(self, word: str) -> bool:
        return word in nbws.connections() or isinstance(self.shell.user_ns.get(word), nbws.WebSocket)


_WORD = re.compile(r"\S+")


def parse_send_line(line: str) -> SendLine:
    """Parse ``%ws_send``'s line with the parser it declares, the one ``%ws_send?`` shows.

    The payload starts at the first word that parser does not take as NAME or an option (the
    words --text and --expr take are already the payload), and is the rest of the line exactly
    as typed. So JSON keeps its quotes, braces and spaces: only NAME and the options go through
    the parser, never the payload.
    """
    parser = NbwsMagics.ws_send.parser
    words = list(_WORD.finditer(line))
    args = parser.parse_args([])
    taken = 0  # words the parser took as NAME or an option
    at = len(line)  # where the payload starts
    while taken < len(words):  # at most NAME and one option: three rounds
        word = words[taken]
        try:
            longer = parser.parse_args([w.group() for w in words[: taken + 1]])
        except UsageError:  # not NAME nor an option (a JSON word, an unknown -x): the payload
            at = word.start()
            break
        if longer.payload or longer.text or longer.expr:
            at = word.start()
            if args.text is None and args.expr is None and not longer.payload:
                args = longer  # --text=TEXT or --expr=EXPR: the payload starts after the "="
                at += word.group().index("=") + 1
            break
        args, taken = longer, taken + 1
    payload = line[at:].rstrip()
    mode = "text" if args.text is not None else "expr" if args.expr is not None else "json"
    return SendLine(args.name, mode, payload)


def load_ipython_extension(ipython: Any) -> None:
    """``%load_ext nbws``: register the %ws_* magics (loading twice is harmless)."""
    ipython.register_magics(NbwsMagics(ipython))


def unload_ipython_extension(ipython: Any) -> None:
    """``%unload_ext nbws``: close every connection."""
    nbws.close_all()
