"""nbws.WebSocket: the browser's WebSocket API for Python, living on nbws's loop thread.

A WebSocket returns at once in state CONNECTING, like ``new WebSocket(url)``; the handshake, the
receiving and the listeners run on the loop thread (see ``nbws.loop``), so a notebook keeps
receiving while its cells run. Messages go into a MessageStore (``ws.frame``, ``ws.messages``).
"""

from __future__ import annotations

import asyncio
import contextvars
import enum
import itertools
import random
import socket
import ssl as ssl_module
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from os import PathLike
from typing import Any
from urllib.parse import urlsplit

from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.client import process_exception as retryable_or_fatal
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import loop as nbws_loop
from .errors import ConnectError, ConnectionClosedError
from .events import CloseEvent, ErrorEvent, MessageEvent, OpenEvent
from .redact import redact_text, redact_url, secrets_of
from .store import MessageStore, to_datetime

try:
    from orjson import OPT_NON_STR_KEYS, OPT_SERIALIZE_NUMPY
    from orjson import dumps as _orjson_dumps

    def _dumps(obj: Any) -> str:
        return _orjson_dumps(obj, option=OPT_NON_STR_KEYS | OPT_SERIALIZE_NUMPY).decode()
except ImportError:  # pragma: no cover
    import json

    def _dumps(obj: Any) -> str:
        return json.dumps(obj, separators=(",", ":"), allow_nan=False)


__all__ = [
    "ReadyState",
    "CONNECTING",
    "OPEN",
    "CLOSING",
    "CLOSED",
    "EVENT_TYPES",
    "WebSocket",
    "connect",
    "connections",
    "close_all",
]


class ReadyState(enum.IntEnum):
    """The browser's ``readyState`` values."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


CONNECTING, OPEN, CLOSING, CLOSED = ReadyState

EVENT_TYPES = ("open", "message", "close", "error")

# Browsers have no message size limit; websockets' 1 MiB default cuts off real snapshots.
MAX_MESSAGE_SIZE = 64 * 2**20
CLOSE_TIMEOUT = 10.0
# With reconnect=True: the delay before the first retry and the longest between retries (seconds).
RECONNECT_DELAY = (1.0, 30.0)
# A connection that stayed open this long is reconnected at once when it drops; one that dropped
# sooner (a flapping server) waits the next backoff delay first.
STABLE_SECONDS = 10.0
# Close codes after which reconnect=True reconnects: a drop, going away, server error, service
# restart, try again later, bad gateway. Others (1000 normal, protocol and policy errors, the
# application's 3000-4999) mean the server ended the conversation: the connection closes.
RETRY_CLOSE_CODES = frozenset({1001, 1006, 1011, 1012, 1013, 1014})
# HTTP statuses on the upgrade that are worth retrying (websockets retries 500, 502-504 too).
RETRY_HTTP_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Longest a blocking wait sleeps before checking for an interrupt (_thread.interrupt_main and
# ipykernel on Windows set a flag that only running Python code sees).
WAIT_SLICE = 0.2
# Full tracebacks printed per listener before further failures are only counted.
PRINTED_LISTENER_FAILURES = 3
# Longest time events wait for the code that created a connection to add its listeners.
HOLD_SECONDS = 0.5
# Sent messages remembered for the panel's log.
OUTBOX_SIZE = 200
# Close codes our side sends when it fails the connection (protocol error, bad data, too big).
_FAILURE_CODES = {1002, 1003, 1007, 1009, 1011}


def _backoff(first: float, longest: float) -> Iterator[float]:
    """Exponential backoff with jitter: each delay between half and all of a bound that starts at
    ``first`` and doubles up to ``longest``, so clients that dropped together spread out."""
    bound = first
    while True:
        yield random.uniform(bound / 2, bound)
        bound = min(bound * 2, longest)


Listener = Callable[[Any], Any]


class _Registry:
    """The live connections by name; one instance, ``_registry``."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._by_name: dict[str, WebSocket] = {}
        self._counter = itertools.count(1)

    def claim(self, ws: WebSocket, name: str | None) -> str:
        """Register ``ws`` under ``name`` (or a fresh ``wsN``); a live namesake is closed first."""
        with self._lock:
            if name is None:
                name = next(f"ws{i}" for i in self._counter if f"ws{i}" not in self._by_name)
            old = self._by_name.get(name)
        if old is not None and old is not ws:
            old.close()
        with self._lock:
            self._by_name[name] = ws
        return name

    def release(self, ws: WebSocket) -> None:
        with self._lock:
            if self._by_name.get(ws.name) is ws:
                del self._by_name[ws.name]

    def live(self) -> dict[str, WebSocket]:
        with self._lock:
            return {n: ws for n, ws in self._by_name.items() if ws.ready_state != CLOSED}


_registry = _Registry()


def connections() -> dict[str, WebSocket]:
    """Name -> WebSocket for every connection that is not closed."""
    return _registry.live()


def close_all(code: int = 1000, reason: str = "") -> None:
    """Close every live connection and wait (bounded) for each to finish closing."""
    _validate_close(code, reason)
    for ws in list(_registry.live().values()):
        ws.close(code, reason)


def _close_all_at_exit() -> None:
    """The interpreter or kernel is ending: close everything, and print nothing about it."""
    global _exiting
    _exiting = True
    close_all()


_exiting = False
nbws_loop.on_shutdown(_close_all_at_exit)


def _validate_url(url: str) -> str:
    if not isinstance(url, str):
        raise TypeError(f"url must be a str like 'ws://host:port/path', not {type(url).__name__}")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [ of an IPv6 address
        raise ValueError(f"invalid WebSocket URL {shown!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        hint = ""
        if parts.scheme in ("http", "https"):
            scheme = "wss" if parts.scheme == "https" else "ws"
            hint = f"; did you mean {scheme}://{shown.split('://', 1)[1]}?"
        raise ValueError(f"invalid WebSocket URL {shown!r}: the scheme must be ws:// or wss://{hint}")
    if not parts.hostname:
        raise ValueError(f"invalid WebSocket URL {shown!r}: it has no host (ws://HOST[:PORT]/path)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"invalid WebSocket URL {shown!r}: the port must be a number 1-65535")
    if parts.fragment:
        raise ValueError(f"invalid WebSocket URL {shown!r}: a WebSocket URL has no #fragment")
    return url


def _validate_close(code: int, reason: str) -> None:
    if not isinstance(code, int) or not (code == 1000 or 3000 <= code <= 4999):
        raise ValueError(f"close code must be 1000 or in 3000-4999, not {code!r}")
    if len(reason.encode("utf-8")) > 123:
        raise ValueError("close reason must be at most 123 bytes of UTF-8")


def _describe_connect_failure(exc: BaseException, url: str, open_timeout: float | None) -> str:
    """One line that says why the handshake failed and what to try."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'wss' else 80)}"
    if isinstance(exc, InvalidStatus):
        r = exc.response
        return f"server at {url} refused the WebSocket upgrade with HTTP {r.status_code} {r.reason_phrase}"
    if isinstance(exc, ssl_module.SSLCertVerificationError):
        return (
            f"TLS certificate of {where} failed verification ({exc.verify_message}); "
            "pass ssl= with an SSLContext that trusts it"
        )
    if isinstance(exc, ssl_module.SSLError) or (
        parts.scheme == "wss" and isinstance(exc, ConnectionResetError)
    ):
        reason = getattr(exc, "reason", None) or "the server closed the connection"
        return f"TLS handshake with {where} failed ({reason}); is it a ws:// server rather than wss://?"
    if isinstance(exc, InvalidHandshake):
        return f"{url} did not answer with a WebSocket handshake ({exc}); is it a WebSocket endpoint?"
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {parts.hostname!r}; check the URL"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}; is the server running?"
    if isinstance(exc, TimeoutError):
        return f"no WebSocket handshake from {where} within open_timeout={open_timeout}s"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc or type(exc).__name__}"
    return f"cannot connect to {url}: {type(exc).__name__}: {exc}"


class _Hold:
    """Events held back while the code that created a connection may still add listeners.

    A browser delivers a WebSocket's events only after the script that created it has run, so
    listeners added right after ``new WebSocket(url)`` never miss the first ones. Here the
    handshake runs on another thread and can fail or finish within microseconds, so events
    wait until the creating frame returns (the cell or function that called the constructor),
    or the creating thread calls a blocking method (``wait_open``, ``recv``, ``send``,
    ``close``), or ``HOLD_SECONDS`` pass, whichever comes first; then they are delivered in order.
    """

    __slots__ = ("deadline", "events", "frame", "thread_id")

    def __init__(self) -> None:
        frame = sys._getframe(1)
        while frame is not None and frame.f_globals.get("__name__", "").startswith("nbws."):
            frame = frame.f_back
        self.thread_id = threading.get_ident()
        self.frame = frame
        self.deadline = time.monotonic() + HOLD_SECONDS
        # (type, event, messages received before it, ready_state when it happened)
        self.events: list[tuple[str, Any, int, ReadyState]] = []

    def creator_running(self) -> bool:
        frame = sys._current_frames().get(self.thread_id)
        while frame is not None:
            if frame is self.frame:
                return True
            frame = frame.f_back
        return False


def _print_listener_failure(message: str, exc: BaseException, with_traceback: bool) -> None:
    if with_traceback:
        traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print(message, file=sys.stderr)


class WebSocket:
    """A WebSocket connection, as ``new WebSocket(url)`` in a browser.

    Returns at once in state CONNECTING; ``wait_open()`` blocks until OPEN. Listeners run on
    nbws's loop thread, with what they print shown under the cell that added them.
    """

    def __init__(
        self,
        url: str,
        *,
        name: str | None = None,
        headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None,
        subprotocols: str | Iterable[str] | None = None,
        reconnect: bool = False,
        max_rows: int | None = None,
        open_timeout: float | None = 10.0,
        ping_interval: float | None = 20.0,
        ssl: ssl_module.SSLContext | None = None,
        ping_timeout: float | None = 20.0,
        max_size: int | None = MAX_MESSAGE_SIZE,
        reconnect_delay: tuple[float, float] = RECONNECT_DELAY,
    ) -> None:
        self.url = _validate_url(url)
        self._shown = redact_url(self.url)  # the URL that messages and repr show: no secrets
        if isinstance(subprotocols, str):
            subprotocols = [subprotocols]
        self._subprotocols = list(subprotocols) if subprotocols else None
        self._headers = list(headers.items() if isinstance(headers, Mapping) else headers or [])
        self._secrets = secrets_of(self.url, self._headers)
        if ssl is not None and not self.url.startswith("wss:"):
            raise ValueError("ssl= is only for wss:// URLs")
        self._ssl = ssl
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
            raise ValueError(f"max_size must be a positive number of bytes or None, not {max_size!r}")
        first, longest = reconnect_delay
        if not 0 < first <= longest:
            raise ValueError(
                f"reconnect_delay must be (first, longest) with 0 < first <= longest, not {reconnect_delay!r}"
            )
        self.auto_reconnect = bool(reconnect)
        self.reconnect_delay = (float(first), float(longest))
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_size = max_size
        self.protocol = ""
        self._store = MessageStore(max_rows)
        self._lock = threading.Lock()
        self._state = CONNECTING
        self._listeners: dict[str, list[tuple[Listener, contextvars.Context]]] = {t: [] for t in EVENT_TYPES}
        self._on_message: list[tuple[Listener, contextvars.Context]] = []
        self._failures: dict[int, int] = {}
        self._settled = threading.Event()  # set once the first handshake succeeded or failed
        self._settled_on_loop: asyncio.Future | None = None  # the same, for the loop thread
        self._closed = threading.Event()
        self._connect_error: ConnectError | None = None
        self._open_waiters = 0
        self._connect_error_raised = False
        self._close_event: CloseEvent | None = None
        self._delivered: dict[str, Any] = {}  # the open/close event listeners last got
        self._presented_state: ReadyState | None = None  # while held events are delivered
        self._hold: _Hold | None = None if nbws_loop.in_loop_thread() else _Hold()
        self._close_request: tuple[int, str] | None = None
        self._conn: Any = None
        self._task: asyncio.Task | None = None
        self._opened_at_ns: int | None = None
        self._sent = self._bytes_sent = self._listener_errors = self._reconnects = 0
        self._attempts = 0  # failed attempts since the connection was last open (reconnect=True)
        self._reconnecting = False
        self._outbox: deque[tuple[int, str | bytes]] = deque(maxlen=OUTBOX_SIZE)
        self._panel: Any = None
        # recv(): one cursor; waiters are woken by the loop thread only when there are any.
        self._cursor = 0
        # wait_for_messages(): counts from here; the first send after a wait moves it forward.
        self._wait_mark = 0
        self._mark_on_send = True
        self._new_data = threading.Condition()
        self._waiting = 0
        self._async_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Future]] = []
        # Background failures nobody listens to are printed where the connection was made.
        self._origin = contextvars.copy_context()
        self.name = _registry.claim(self, name)
        nbws_loop.submit(self._run())

    def reconnect(self) -> WebSocket:
        """Open the connection again, same URL and options (closing it first if it is not closed).

        Messages, counters and listeners are kept; the next open event has ``reconnect=True``.
        Returns at once in CONNECTING, like the constructor.
        """
        if nbws_loop.in_loop_thread():
            raise RuntimeError("reconnect() blocks until closed: call it outside listeners")
        self.close()
        with self._lock:
            if self._state != CLOSED:
                raise ConnectionClosedError(f"connection {self.name!r} did not finish closing; try again")
            self._state = CONNECTING
            self._close_request = self._close_event = self._connect_error = None
            self._connect_error_raised = False
            self._delivered.pop("close", None)
            self._closed.clear()
            self._settled.clear()
            self._reconnects += 1
        _registry.claim(self, self.name)
        nbws_loop.submit(self._run(reopened=True))
        if self._panel is not None:
            self._panel.refresh()  # its timer stopped when the connection closed
        return self

    def save(self, path: str | PathLike) -> int:
        """Write every retained message to ``path`` (JSON Lines with arrival times); returns the count.

        ``nbws.replay(path)`` serves the file again as a local WebSocket server.
        """
        from .replay import write_recording

        return write_recording(self._store.messages(), path)

    def panel(self) -> Any:
        """The live ipywidgets panel of this connection (one per connection; display it anywhere)."""
        if self._panel is None:
            from .panel import Panel  # ipywidgets is imported only here

            self._panel = Panel(self)
        return self._panel

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Displaying the connection shows its panel (text where widgets cannot be shown)."""
        bundle: dict[str, Any] = {"text/plain": repr(self)}
        try:
            panel = self.panel()
        except ImportError:  # ipywidgets missing: the text is all there is
            return bundle
        bundle["application/vnd.jupyter.widget-view+json"] = {
            "version_major": 2,
            "version_minor": 0,
            "model_id": panel.model_id,
        }
        return bundle

    # -- state ------------------------------------------------------------------------------

    @property
    def ready_state(self) -> ReadyState:
        """CONNECTING, OPEN, CLOSING or CLOSED (0..3, as in the browser)."""
        presented = self._presented_state
        if presented is not None and nbws_loop.in_loop_thread():
            return presented
        return self._state

    @property
    def frame(self) -> Any:
        """A pandas DataFrame of every JSON message received, indexed by UTC ``received_at``."""
        return self._store.frame()

    @property
    def messages(self) -> list[MessageEvent]:
        """Every message received (JSON or not), oldest first; bounded by ``max_rows``."""
        return self._store.messages()

    @property
    def max_rows(self) -> int | None:
        return self._store.max_rows

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: received, sent, bytes, parse and listener errors, reconnects, rate (msg/s).

        With ``reconnect=True``: ``reconnecting`` (waiting to reconnect or reconnecting now) and
        ``attempts`` (failed attempts since the connection was last open).
        """
        store = self._store
        return {
            "state": self._state.name,
            "received": store.received,
            "sent": self._sent,
            "bytes_received": store.bytes_received,
            "bytes_sent": self._bytes_sent,
            "parse_errors": store.parse_errors,
            "listener_errors": self._listener_errors,
            "reconnects": self._reconnects,
            "reconnecting": self._reconnecting,
            "attempts": self._attempts,
            "rate": 0.0 if self._state == CLOSED else store.rate(time.time_ns(), since_ns=self._opened_at_ns),
        }

    def __repr__(self) -> str:
        return (
            f"<nbws.WebSocket {self.name!r} {self._shown} {self._state.name} received={self._store.received}>"
        )

    # -- listeners --------------------------------------------------------------------------

    def add_event_listener(self, type: str, listener: Listener) -> None:
        """Call ``listener(event)`` on each ``type`` event ("open", "message", "close", "error").

        Adding the same function twice has no effect, as in the browser. A listener for "open"
        added while the connection is open, or for "close" added once it is closed, is called
        once right away with that event, so a later cell does not miss what already happened.
        """
        if type not in EVENT_TYPES:
            raise ValueError(f"unknown event type {type!r}; use one of {', '.join(EVENT_TYPES)}")
        if not callable(listener):
            raise TypeError(f"listener must be callable, not {listener!r}")
        with self._lock:
            if any(fn is listener for fn, _ in self._listeners[type]):
                return
            entry = (listener, contextvars.copy_context())
            # Copy-on-write: the loop thread iterates the old list without a lock.
            self._listeners[type] = [*self._listeners[type], entry]
            if type == "message" and self._hold is None:
                self._on_message = self._listeners[type]
            late = None
            if (type, self._state) in (("open", OPEN), ("close", CLOSED)):
                late = self._delivered.get(type)
        if late is not None:
            nbws_loop.call_soon(self._call_late, type, entry, late)

    def remove_event_listener(self, type: str, listener: Listener) -> None:
        """Stop calling ``listener`` for ``type`` events; unknown listeners are ignored."""
        with self._lock:
            if type not in self._listeners:
                return
            self._listeners[type] = [e for e in self._listeners[type] if e[0] is not listener]
            if type == "message" and self._hold is None:
                self._on_message = self._listeners[type]

    def on(self, type: str) -> Callable[[Listener], Listener]:
        """Decorator form of ``add_event_listener``: ``@ws.on("message")``."""

        def decorate(listener: Listener) -> Listener:
            self.add_event_listener(type, listener)
            return listener

        return decorate

    def _call_late(self, type: str, entry: tuple[Listener, contextvars.Context], event: Any) -> None:
        if entry in self._listeners[type]:
            self._call(type, entry, event)

    def _emit(self, type: str, event: Any, printed: bool = False) -> None:
        """Deliver an open/error/close event now, or keep it while the creator may add listeners.

        ``printed``: the error was shown already, so nobody listening needs no second print.
        """
        with self._lock:
            if self._hold is not None:
                self._hold.events.append((type, event, self._store.received, self._state))
                return
            entries = self._listeners[type]
            if type != "error":
                self._delivered[type] = event
        self._deliver(type, event, entries, printed)

    def _deliver(self, type: str, event: Any, entries: list, printed: bool = False) -> None:
        if type == "error" and isinstance(event.error, ConnectError):
            printed = printed or bool(self._open_waiters) or self._connect_error_raised
        if type == "error" and not entries and not printed and not _exiting:  # never silent: tell the cell
            self._origin.run(print, event.message, file=sys.stderr)
        for entry in entries:
            self._call(type, entry, event)
        if type == "close":
            self._closed.set()

    def _release(self) -> None:
        """End the hold (loop thread): deliver what was held, messages in their place."""
        with self._lock:
            hold, self._hold = self._hold, None
            if hold is None:
                return
            received = self._store.received
            listeners = dict(self._listeners)
            self._on_message = listeners["message"]
            for type, event, _, _ in hold.events:
                if type != "error":
                    self._delivered[type] = event
        # Listeners see ready_state as it was when each held event happened, as in browsers.
        seq = 0
        try:
            for type, event, before, state in hold.events:
                self._replay_messages(seq, before, listeners["message"])
                seq = before
                self._presented_state = state
                self._deliver(type, event, listeners[type])
        finally:
            self._presented_state = None
        self._replay_messages(seq, received, listeners["message"])

    def _replay_messages(self, start: int, stop: int, entries: list) -> None:
        for event in self._store.events(start, stop) if entries else ():
            for entry in entries:
                self._call("message", entry, event)

    def _poll_hold(self) -> None:
        hold = self._hold
        if hold is None:
            return
        if time.monotonic() >= hold.deadline or not hold.creator_running():
            self._release()
        else:
            nbws_loop.get_loop().call_later(0.005, self._poll_hold)

    def _let_go(self) -> None:
        """The creating thread is about to block: it has added its listeners."""
        hold = self._hold
        if hold is not None and hold.thread_id == threading.get_ident():
            nbws_loop.call_soon(self._release)

    def _call(self, type: str, entry: tuple[Listener, contextvars.Context], event: Any) -> None:
        listener, ctx = entry
        try:
            ctx.run(listener, event)
        except Exception as exc:  # noqa: BLE001 - a listener's bug must not stop the stream
            self._listener_errors += 1
            count = self._failures[id(listener)] = self._failures.get(id(listener), 0) + 1
            name = getattr(listener, "__qualname__", repr(listener))
            message = f"nbws: {type} listener {name} of {self.name!r} raised {exc!r}; the stream goes on"
            if count == PRINTED_LISTENER_FAILURES:
                message += " (further failures of this listener are counted, not printed)"
            if count <= PRINTED_LISTENER_FAILURES:
                ctx.run(_print_listener_failure, message, exc, True)
            if type != "error":
                self._emit("error", ErrorEvent(exc, message), printed=True)

    # -- the connection, on the loop thread --------------------------------------------------

    def _connector(self) -> Any:
        kwargs: dict[str, Any] = {}
        if self._ssl is not None:
            kwargs["ssl"] = self._ssl
        return ws_connect(
            self.url,
            additional_headers=self._headers or None,
            subprotocols=self._subprotocols,
            open_timeout=self.open_timeout,
            ping_interval=self.ping_interval,
            ping_timeout=self.ping_timeout,
            # A peer that does not answer pings within ping_timeout will not answer a close either.
            close_timeout=min(CLOSE_TIMEOUT, self.ping_timeout or CLOSE_TIMEOUT),
            max_size=self.max_size,
            **kwargs,
        )

    def _settle(self) -> None:
        self._settled.set()
        if self._settled_on_loop is not None and not self._settled_on_loop.done():
            self._settled_on_loop.set_result(None)

    async def _run(self, reopened: bool = False) -> None:
        self._settled_on_loop = asyncio.get_running_loop().create_future()
        with self._lock:
            self._task = asyncio.current_task()
            closed_early = self._close_request is not None
        if self._hold is not None:
            self._poll_hold()
        if closed_early:  # close() came before this task started
            self._fail("closed before the connection was established", None)
            return
        try:
            if self.auto_reconnect:
                await self._run_reconnecting(reopened)
            else:
                try:
                    conn = await self._connector()
                except (asyncio.CancelledError, Exception) as exc:  # noqa: BLE001 - all become error + close
                    self._fail(self._describe_failure(exc), exc)
                    return
                try:
                    self._finish(*await self._serve(conn, reopened=reopened))
                except asyncio.CancelledError:  # close() came as the handshake finished
                    conn.transport.abort()
                    self._fail("closed before the connection was established", None)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: show it, never die silently
            if self._conn is not None:
                self._conn.transport.abort()  # and never leave the socket open behind CLOSED
            self._origin.run(traceback.print_exc)
            self._fail(f"nbws internal error: {exc!r}", exc)

    async def _run_reconnecting(self, reopened: bool) -> None:
        """Open, serve, and open again when the connection ends, until the user closes it, the
        server's close code says it is over, or a handshake fails for good.

        Failed handshakes are retried with jittered exponential backoff (``reconnect_delay``),
        as websockets' reconnect loop does and with its rule for what is worth retrying
        (``_on_connect_failure``). nbws runs the loop itself because websockets' resets the
        backoff whenever a handshake succeeds (a server that accepts and drops at once would be
        hammered) and, before websockets 16 (Colab has 15), cannot take other delays. A
        connection that dropped within ``STABLE_SECONDS`` of opening waits a backoff delay too.
        """
        first = True
        failures, flapping = _backoff(*self.reconnect_delay), _backoff(*self.reconnect_delay)
        try:
            while True:
                try:
                    conn = await self._connector()
                except Exception as exc:
                    verdict = self._on_connect_failure(exc)
                    if verdict is exc:
                        raise
                    await asyncio.sleep(next(failures))
                    continue
                failures = _backoff(*self.reconnect_delay)
                if not first:
                    self._reconnects += 1
                self._attempts, self._reconnecting = 0, False
                opened = time.monotonic()
                close, error = await self._serve(conn, reopened=reopened or not first)
                first = False
                if self._close_request is not None or close.code not in RETRY_CLOSE_CODES:
                    self._finish(close, error)
                    return
                if time.monotonic() - opened >= STABLE_SECONDS:
                    flapping, delay = _backoff(*self.reconnect_delay), 0.0
                else:
                    delay = next(flapping)
                with self._lock:
                    self._state = CONNECTING
                    self._delivered.pop("open", None)
                    self._reconnecting = True
                why = (
                    error.message
                    if error is not None
                    else f"{self._shown} closed with {close.code} {close.reason}"
                )
                self._emit(
                    "error",
                    ErrorEvent(error.error if error else None, f"{why}; reconnecting in {delay:.1f}s"),
                )
                await asyncio.sleep(delay)
        except (asyncio.CancelledError, Exception) as exc:  # noqa: BLE001 - fatal: not retried
            self._reconnecting = False
            self._fail(self._describe_failure(exc), exc)

    def _describe_failure(self, exc: BaseException) -> str:
        if self._close_request is not None:  # close() while connecting; websockets may say more
            return "closed before the connection was established"
        message = _describe_connect_failure(exc, self._shown, self.open_timeout)
        return redact_text(message, self._secrets)  # a library's text may quote a header

    def _on_connect_failure(self, exc: Exception) -> Exception | None:
        """Whether to retry a failed handshake: None to retry (reported), else the fatal error.

        Retried: network errors, timeouts, HTTP 408/429/5xx. Fatal: other HTTP statuses (401,
        403, 404...), TLS failures, anything that is not a WebSocket server. The verdict is
        always the exception itself or None.
        """
        if isinstance(exc, ssl_module.SSLError):
            verdict: Exception | None = exc
        elif isinstance(exc, InvalidStatus):
            verdict = None if exc.response.status_code in RETRY_HTTP_STATUSES else exc
        else:
            verdict = retryable_or_fatal(exc)
        if verdict is None:
            self._attempts += 1
            self._reconnecting = True
            message = self._describe_failure(exc)
            if not self._settled.is_set():
                self._connect_error = ConnectError(
                    f"{message} (still retrying in the background)", url=self.url
                )
                self._connect_error.__cause__ = exc
                self._settle()
            self._emit("error", ErrorEvent(exc, f"{message}; reconnecting (attempt {self._attempts})"))
        return verdict

    def _fail(self, message: str, exc: BaseException | None) -> None:
        """The handshake failed (or close() came first): error, then close 1006."""
        status = exc.response.status_code if isinstance(exc, InvalidStatus) else None
        error = ConnectError(message, url=self.url, status=status)
        error.__cause__ = None if isinstance(exc, asyncio.CancelledError) else exc
        self._connect_error = error
        self._finish(CloseEvent(1006, "", False), ErrorEvent(error, message))

    async def _serve(self, conn: Any, reopened: bool = False) -> tuple[CloseEvent, ErrorEvent | None]:
        """Run one open connection until it closes; its close event and error (if any)."""
        self._conn = conn
        self.protocol = conn.subprotocol or ""
        self._opened_at_ns = time.time_ns()
        event = OpenEvent(reconnect=reopened)
        with self._lock:
            request = self._close_request
            if request is None:
                self._state = OPEN
        self._settle()
        if request is not None:  # close() raced with the handshake's end
            await conn.close(*request)
        else:
            self._emit("open", event)
            await self._receive(conn)
        await conn.wait_closed()
        return self._close_of(conn)

    async def _receive(self, conn: Any) -> None:
        """The per-message hot path: a store append, a counter and two attribute checks."""
        recv = conn.recv
        append = self._store.append
        now_ns = time.time_ns
        let_others_run = time.sleep
        count = 0
        try:
            while True:
                data = await recv()
                t = now_ns()
                append(data, t)
                count += 1
                if not count & 511:
                    # A fast stream would hold the GIL for whole switch intervals (5 ms) at a
                    # time, so the kernel's threads wait ~5 ms per step of every cell; yielding
                    # every 512 messages (about 3 ms at full speed) keeps cells responsive.
                    let_others_run(0)
                if self._on_message:
                    seq = self._store.received - 1
                    event = MessageEvent(data, seq, to_datetime(t))
                    for entry in self._on_message:
                        self._call("message", entry, event)
                if self._waiting:
                    self._wake_readers()
        except ConnectionClosed:
            pass

    def _close_of(self, conn: Any) -> tuple[CloseEvent, ErrorEvent | None]:
        """Turn websockets' record of the closing handshake into the browser's close event, plus
        an error event when the connection failed (dropped, or failed by us: 1009 too big...)."""
        protocol = conn.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        failed_by_us = sent is not None and not protocol.close_rcvd_then_sent and sent.code in _FAILURE_CODES
        if failed_by_us:
            code = int(sent.code)
            message = f"nbws closed {self._shown} with {code}: {self._failure_text(code, sent.reason)}"
            close = CloseEvent(code, sent.reason, False)
        elif rcvd is None:
            message = f"connection to {self._shown} was lost without a close frame"
            close = CloseEvent(1006, "", False)
        else:
            return CloseEvent(int(rcvd.code), rcvd.reason, True), None
        return close, ErrorEvent(
            ConnectionClosedError(message, code=close.code, reason=close.reason), message
        )

    def _failure_text(self, code: int, reason: str) -> str:
        """Why nbws failed the connection, and what the user can do."""
        if code == 1009:
            return (
                f"a message was larger than max_size={self.max_size:,} bytes; "
                "connect with a larger max_size= (or None for no limit)"
            )
        if code == 1007:
            return "the server sent a text message that is not valid UTF-8"
        if code == 1011 and "keepalive" in reason:
            return (
                f"no answer to a ping within ping_timeout={self.ping_timeout}s: the server or "
                "the network stalled"
            )
        return f"the server broke the WebSocket protocol ({reason})"

    def _finish(self, close: CloseEvent, error: ErrorEvent | None) -> None:
        """Enter CLOSED, then dispatch error (if any) and close, in the WHATWG order."""
        with self._lock:
            if self._state == CLOSED:
                return
            self._state = CLOSED
            self._close_event = close
            self._delivered.pop("open", None)
        _registry.release(self)
        self._settle()
        self._wake_readers()
        if error is not None:
            self._emit("error", error)
        self._emit("close", close)

    def _wake_readers(self) -> None:
        with self._new_data:
            self._new_data.notify_all()
            for loop, future in self._async_waiters:
                loop.call_soon_threadsafe(_resolve, future)

    # -- the caller's side ------------------------------------------------------------------

    def wait_open(self, timeout: float | None = None) -> WebSocket:
        """Block until the connection has opened and return self; ConnectError says why it couldn't.

        A short stream may have opened and closed again by then (its messages are kept; see
        ``ready_state``). ``TimeoutError`` if still connecting after ``timeout`` seconds (the
        handshake itself is bounded by ``open_timeout``).
        """
        self._open_waiters += 1  # someone will hear about a failure: no need to print it too
        try:
            self._let_go()
            if not _wait(self._settled, timeout):
                raise TimeoutError(f"{self._shown} is still connecting after {timeout}s")
            if self._state != OPEN and self._connect_error is not None:
                error = self._connect_error
                self._connect_error_raised = True
                raise ConnectError(str(error), url=error.url, status=error.status) from error.__cause__
            return self
        finally:
            self._open_waiters -= 1

    def wait_closed(self, timeout: float | None = None) -> CloseEvent:
        """Block until CLOSED and the close listeners have run; returns the close event.

        ``TimeoutError`` if still not closed after ``timeout`` seconds.
        """
        self._let_go()
        if not _wait(self._closed, timeout):
            raise TimeoutError(f"{self._shown} is still {self._state.name} after {timeout}s")
        assert self._close_event is not None
        return self._close_event

    def _closed_error(self, what: str) -> ConnectionClosedError:
        close = self._close_event
        detail = f" (code {close.code}{', ' + close.reason if close.reason else ''})" if close else ""
        return ConnectionClosedError(
            f"connection {self.name!r} to {self._shown} {what}{detail}; open a new one with nbws.connect()",
            code=close.code if close else None,
            reason=close.reason if close else "",
        )

    def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message.

        While CONNECTING, waits for the connection (up to ``open_timeout``). After close,
        raises ConnectionClosedError: nbws never drops data silently.
        """
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, (str, bytes)):
            raise TypeError(
                f"send() takes str or bytes, not {type(data).__name__}; use send_json() for objects"
            )
        self._let_go()
        if nbws_loop.in_loop_thread():  # from a listener: never block the loop
            task = asyncio.ensure_future(self._send(data))
            task.add_done_callback(self._report_send_failure)
            return
        if self._state == CONNECTING and not _wait(self._settled, self.open_timeout):
            raise TimeoutError(f"{self._shown} did not open within {self.open_timeout}s; nothing was sent")
        if self._state != OPEN:
            self.wait_open(0)  # raises ConnectError if it never opened
            raise self._closed_error("is closed" if self._state == CLOSED else "is closing")
        if self._mark_on_send:  # replies to this exchange count from here
            self._wait_mark, self._mark_on_send = self._store.received, False
        nbws_loop.submit(self._send(data)).result()

    def send_json(self, obj: Any) -> None:
        """Send ``obj`` as a JSON text message (``JSON.stringify`` then ``send``)."""
        try:
            text = _dumps(obj)
        except TypeError as exc:
            raise TypeError(f"cannot send this value as JSON: {exc}") from None
        self.send(text)

    async def _send(self, data: str | bytes) -> None:
        if self._state == CONNECTING and self._settled_on_loop is not None:
            await asyncio.wait_for(asyncio.shield(self._settled_on_loop), self.open_timeout)
        if self._state != OPEN:
            raise self._closed_error("is closed" if self._state == CLOSED else "is closing")
        try:
            await self._conn.send(data)
        except ConnectionClosed:
            raise self._closed_error("closed while sending") from None
        self._outbox.append((time.time_ns(), data))
        self._sent += 1
        if isinstance(data, str) and not data.isascii():
            self._bytes_sent += len(data.encode())
        else:
            self._bytes_sent += len(data)

    def _report_send_failure(self, task: asyncio.Future) -> None:
        if task.cancelled() or task.exception() is None:
            return
        exc = task.exception()
        self._emit("error", ErrorEvent(exc, f"nbws: send from a listener failed: {exc}"))

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` (1000 or 3000-4999) and ``reason`` (<= 123 UTF-8 bytes).

        Idempotent. Outside listeners it waits (bounded) until CLOSED. Closing while CONNECTING
        abandons the handshake: error, then close 1006, as in the browser.
        """
        _validate_close(code, reason)
        self._let_go()
        with self._lock:
            if self._close_request is not None or self._state == CLOSED:
                state = None
            else:
                self._close_request = (code, reason)
                state = self._state
                if state == OPEN:
                    self._state = CLOSING
            task = self._task  # None: _run has not started and will see _close_request
        if state == OPEN:
            conn = self._conn
            nbws_loop.call_soon(lambda: asyncio.ensure_future(conn.close(code, reason)))
        elif state == CONNECTING and task is not None:
            nbws_loop.call_soon(task.cancel)
        if not nbws_loop.in_loop_thread():
            _wait(self._closed, CLOSE_TIMEOUT + 1)

    def recv(self, timeout: float | None = None) -> MessageEvent:
        """The next message this reader has not seen yet, oldest first; blocks until one arrives.

        ``TimeoutError`` after ``timeout`` seconds; ConnectionClosedError once closed and every
        message has been read. An interrupt (Ctrl-C) raises KeyboardInterrupt and leaves the
        connection as it was.
        """
        self._let_go()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._new_data:
            self._waiting += 1
            try:
                while True:
                    event = self._take_next()
                    if event is not None:
                        return event
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(f"no message from {self._shown} within {timeout}s")
                    self._new_data.wait(WAIT_SLICE if remaining is None else min(remaining, WAIT_SLICE))
            finally:
                self._waiting -= 1

    def wait_for_messages(self, count: int = 1, timeout: float | None = None) -> int:
        """Block until ``count`` new messages arrived; returns how many were received in all.

        "New" counts from the later of: the connection's start, the first ``send`` after the
        previous wait, or the end of the previous wait. So ``send`` then ``wait_for_messages``
        never misses a reply that came back before the wait began. ``TimeoutError`` says how
        many arrived; ConnectionClosedError if the connection closes first. Interruptible.
        """
        if not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, not {count!r}")
        self._let_go()
        target = self._wait_mark + count
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._new_data:
            self._waiting += 1
            try:
                while self._store.received < target:
                    arrived = self._store.received - self._wait_mark
                    if self._state == CLOSED:
                        raise self._closed_error(f"closed after {arrived} of {count} new messages")
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        raise TimeoutError(
                            f"{arrived} of {count} new messages from {self.name!r} arrived within {timeout}s"
                        )
                    self._new_data.wait(WAIT_SLICE if remaining is None else min(remaining, WAIT_SLICE))
            finally:
                self._waiting -= 1
        self._wait_mark, self._mark_on_send = target, True
        return self._store.received

    async def arecv(self, timeout: float | None = None) -> MessageEvent:
        """``recv`` for async code: ``event = await ws.arecv()``."""
        self._let_go()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:
            future = loop.create_future()
            with self._new_data:
                event = self._take_next()
                if event is not None:
                    return event
                self._async_waiters.append((loop, future))
                self._waiting += 1
            try:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError(f"no message from {self._shown} within {timeout}s")
                try:
                    await asyncio.wait_for(future, remaining)
                except asyncio.TimeoutError:
                    raise TimeoutError(f"no message from {self._shown} within {timeout}s") from None
            finally:
                with self._new_data:
                    self._async_waiters.remove((loop, future))
                    self._waiting -= 1

    def _take_next(self) -> MessageEvent | None:
        """The message at the cursor, advancing it; raise if none can come. Hold _new_data."""
        seq = max(self._cursor, self._store.oldest_seq())
        event = self._store.event(seq)
        if event is not None:
            self._cursor = seq + 1
            return event
        if self._state == CLOSED:
            raise self._closed_error("is closed")
        return None


def _wait(event: threading.Event, timeout: float | None) -> bool:
    """``event.wait(timeout)`` in slices, so that an interrupt flag set by another thread is seen."""
    deadline = None if timeout is None else time.monotonic() + timeout
    while not event.is_set():
        remaining = WAIT_SLICE if deadline is None else min(deadline - time.monotonic(), WAIT_SLICE)
        if remaining <= 0:
            return False
        event.wait(remaining)
    return True


def _resolve(future: asyncio.Future) -> None:
    if not future.done():
        future.set_result(None)


def connect(url: str, **kwargs: Any) -> WebSocket:
    """Same as ``WebSocket(url, **kwargs)``: returns at once, connecting in the background."""
    return WebSocket(url, **kwargs)
