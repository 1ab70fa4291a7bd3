"""nbws.WebSocket: the browser's WebSocket API for Python, living on nbws's loop thread.

A WebSocket returns at once in state CONNECTING, like ``new WebSocket(url)``; the handshake, the
receiving and the listeners run on the loop thread (see ``nbws.loop``), so a notebook keeps
receiving while its cells run. This class is the public face: the state machine
(``nbws.state``), its I/O (``nbws.connection``, ``nbws.transport``), the listeners
(``nbws.dispatch``), the readers (``nbws.readers``) and the registry (``nbws.registry``) do the
work.
"""

from __future__ import annotations

import contextvars
import ssl as ssl_module
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping
from datetime import timedelta
from os import PathLike
from typing import Any

from . import loop as nbws_loop
from .connection import Connection
from .dispatch import EVENT_TYPES, Dispatcher, Hold
from .errors import ConnectError, ConnectionClosedError
from .events import CloseEvent, ErrorEvent, MessageEvent
from .jsontext import dumps
from .messagelist import MessageList
from .readers import Readers
from .redact import redact_url, secrets_of
from .registry import close_all, connections, registry
from .retry import RECONNECT_DELAY, RetryPolicy
from .state import CLOSED, CLOSING, CONNECTING, OPEN, Machine, ReadyState
from .store import MessageStore, NewRows
from .transport import CLOSE_TIMEOUT, MAX_MESSAGE_SIZE, Options, adapter
from .validate import validate_close, validate_url

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

Listener = Callable[[Any], Any]


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
        archive: str | PathLike | None = None,
        archive_every: float | timedelta = 60.0,
        transport: str | None = None,
    ) -> None:
        self.url = validate_url(url)
        self._shown = redact_url(self.url)  # the URL that messages and repr show: no secrets
        if isinstance(subprotocols, str):
            subprotocols = [subprotocols]
        header_list = list(headers.items() if isinstance(headers, Mapping) else headers or [])
        if ssl is not None and not self.url.startswith("wss:"):
            raise ValueError("ssl= is only for wss:// URLs")
        if max_size is not None and (not isinstance(max_size, int) or max_size < 1):
            raise ValueError(f"max_size must be a positive number of bytes or None, not {max_size!r}")
        policy = RetryPolicy(bool(reconnect), reconnect_delay)
        self.auto_reconnect = policy.enabled
        self.reconnect_delay = policy.delay
        self.open_timeout = open_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.max_size = max_size
        options = Options(
            url=self.url,
            shown=self._shown,
            headers=header_list,
            subprotocols=list(subprotocols) if subprotocols else None,
            open_timeout=open_timeout,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            max_size=max_size,
            ssl=ssl,
            secrets=secrets_of(self.url, header_list),
        )
        connection_transport = adapter(transport, options)
        self.transport = connection_transport.name  # "websockets" or "picows"
        self._store = MessageStore(max_rows)
        self._archive: Any = None
        if archive is not None:
            from .archive import Archive  # pyarrow's writer, only for connections that archive

            self._archive = Archive(
                archive, archive_every, seal=self._store.seal_now, report=self._archive_failed
            )
            self._store.archive = self._archive
        self._machine = Machine(policy, self.url)
        origin = contextvars.copy_context()  # background failures are printed where it was made
        hold = None if nbws_loop.in_loop_thread() else Hold()
        self._dispatcher = Dispatcher(lambda: self.name, lambda: self._machine.state, origin, hold)
        self._readers = Readers(
            self._store, lambda: self._machine.state == CLOSED, self._closed_error, self._shown
        )
        self._connection = Connection(
            self._machine,
            connection_transport,
            self._store,
            self._dispatcher,
            self._readers,
            origin,
            exiting=lambda: registry.exiting,
        )
        self._told_lock = threading.Lock()
        self._panel: Any = None
        self._seen_closed = False
        self.name, older = registry.claim(self, name)
        self._connection.add_state_hook(self._released_when_closed)
        if self._archive is not None:
            self._connection.add_state_hook(lambda: self._archive.on_state(self._machine.state == CLOSED))
        if older is not None:
            older.close()  # re-running a cell replaces its connection
        self._connection.start()

    # -- state and data -----------------------------------------------------------------------

    @property
    def ready_state(self) -> ReadyState:
        """CONNECTING, OPEN, CLOSING or CLOSED (0..3, as in the browser)."""
        presenting = self._dispatcher.presenting
        if presenting is not None and nbws_loop.in_loop_thread():
            return presenting  # a held event is delivered: the state it happened in
        return self._machine.state

    @property
    def closed(self) -> bool:
        """True once CLOSED (and not reopened)."""
        return self._machine.state == CLOSED

    @property
    def protocol(self) -> str:
        """The subprotocol the server chose, or ""."""
        return self._connection.protocol

    @property
    def close_event(self) -> CloseEvent | None:
        """How the connection closed (None while it is not CLOSED)."""
        return self._machine.close_event if self._machine.state == CLOSED else None

    @property
    def frame(self) -> Any:
        """A pandas DataFrame of every JSON message received, indexed by UTC ``received_at``."""
        return self._store.frame()

    @property
    def messages(self) -> MessageList:
        """Every message received (JSON or not), oldest first; bounded by ``max_rows``. A
        snapshot that makes each ``MessageEvent`` when it is read: ``ws.messages[-1]`` costs one
        event however many are retained; ``list(ws.messages)`` copies them all."""
        return self._store.messages()

    @property
    def max_rows(self) -> int | None:
        return self._store.max_rows

    def tail(self, n: int = 5) -> Any:
        """The last ``n`` rows of ``frame``, cheaply (for displays)."""
        return self._store.tail(n)

    def recent_rows(self, n: int = 5) -> list[tuple[int, dict]]:
        """The newest ``n`` rows of ``frame`` as ``(time_ns, {column: value})``, oldest first,
        without pandas and at a cost of ``n`` rows (for displays; fewer right after a chunk of
        messages that are not JSON)."""
        return self._store.recent_rows(n)

    def rows_since(self, position: int, columns: Iterable[str], limit: int | None = None) -> NewRows:
        """Some ``columns`` of ``frame``'s rows after its first ``position`` rows, the newest
        ``limit`` at most, as numpy arrays (for front-ends such as the live chart: costs the new
        rows of those columns). Start with 0; pass the result's ``position`` next time."""
        return self._store.rows_since(position, columns, limit)

    def recent(self, count: int, after: int = 0) -> list[MessageEvent]:
        """The newest ``count`` received messages whose ``seq`` is at least ``after``, oldest first."""
        received = self._store.received
        return list(self._store.events(max(after, received - count), received))

    def recent_sent(self, count: int, after_ns: int = 0) -> list[tuple[int, str | bytes]]:
        """The newest ``count`` sent messages (``(time_ns, data)``) sent after ``after_ns``."""
        return [(t, data) for t, data in list(self._connection.sent_log) if t > after_ns][-count:]

    @property
    def stats(self) -> dict[str, Any]:
        """Counters: received, sent, bytes, parse and listener errors, reconnects, rate (msg/s).

        With ``reconnect=True``: ``reconnecting`` (waiting to reconnect or reconnecting now) and
        ``attempts`` (failed attempts since the connection was last open). With ``archive=``:
        ``archived`` (rows written to it), ``archived_not_json`` (messages that are not JSON),
        ``archive_files`` and ``archive_errors`` (files that could not be written).
        """
        store, machine, connection = self._store, self._machine, self._connection
        state = machine.state
        archive = self._archive
        if archive is not None:
            archived = {
                "archived": archive.rows,
                "archived_not_json": archive.messages,
                "archive_files": archive.files,
                "archive_errors": archive.errors,
            }
        return {
            "state": state.name,
            "received": store.received,
            "sent": connection.sent,
            "bytes_received": store.bytes_received,
            "bytes_sent": connection.bytes_sent,
            "parse_errors": store.parse_errors,
            "listener_errors": self._dispatcher.listener_errors,
            "reconnects": machine.reconnects,
            "reconnecting": machine.reconnecting,
            "attempts": machine.attempts,
            "rate": 0.0 if state == CLOSED else store.rate(time.time_ns(), since_ns=connection.opened_at_ns),
            **(archived if archive is not None else {}),
        }

    def add_state_hook(self, hook: Callable[[], Any]) -> Callable[[], None]:
        """Call ``hook()`` on the loop thread after every state change (for front-ends such as
        the panel); returns a function that removes it."""
        return self._connection.add_state_hook(hook)

    def __repr__(self) -> str:
        state, received = self._machine.state.name, self._store.received
        return f"<nbws.WebSocket {self.name!r} {self._shown} {state} received={received}>"

    # -- listeners ----------------------------------------------------------------------------

    def add_event_listener(self, type: str, listener: Listener) -> None:
        """Call ``listener(event)`` on each ``type`` event ("open", "message", "close", "error").

        Adding the same function twice has no effect, as in the browser. A listener for "open"
        added while the connection is open, or for "close" added once it is closed, is called
        once right away with that event, so a later cell does not miss what already happened.
        """
        entry = self._dispatcher.add(type, listener, (("open", OPEN), ("close", CLOSED)))
        if entry is not None:
            nbws_loop.call_soon(self._dispatcher.call_late, type, entry)

    def remove_event_listener(self, type: str, listener: Listener) -> None:
        """Stop calling ``listener`` for ``type`` events; unknown listeners are ignored."""
        self._dispatcher.remove(type, listener)

    def on(self, type: str) -> Callable[[Listener], Listener]:
        """Decorator form of ``add_event_listener``: ``@ws.on("message")``."""

        def decorate(listener: Listener) -> Listener:
            self.add_event_listener(type, listener)
            return listener

        return decorate

    def _let_go(self) -> None:
        """The creating thread is about to block: it has added its listeners, end the hold."""
        if self._dispatcher.held_by_this_thread():
            nbws_loop.call_soon(self._dispatcher.release)

    # -- waiting ------------------------------------------------------------------------------

    def _telling(self, delta: int) -> None:
        with self._told_lock:
            self._connection.told += delta

    def wait_open(self, timeout: float | None = None) -> WebSocket:
        """Block until the connection is open and return self; ConnectError says why it can't be.

        With ``reconnect=True``, between attempts after a drop it waits for the next open; if the
        connection has never opened, a failed attempt raises at once (saying it is still retrying),
        so that a wrong URL does not block forever. A short stream may have opened and closed
        again by then (its messages are kept; see ``ready_state``). ``TimeoutError`` if still
        connecting after ``timeout`` seconds.
        """
        machine = self._machine

        def settled() -> bool:
            state = machine.state
            return state != CONNECTING or (not machine.ever_opened and machine.last_failure is not None)

        self._telling(+1)  # whoever waits hears about a failure: no need to print it too
        try:
            self._let_go()
            if not self._connection.wait(settled, timeout):
                raise TimeoutError(f"{self._shown} is still {self._connecting_word()} after {timeout}s")
            failure = machine.last_failure  # cleared on each open
            if machine.state != CONNECTING and machine.ever_opened and failure is None:
                return self  # open, or a short stream that opened and closed since
            if failure is None:  # closed by the user before it opened
                raise ConnectError("closed before the connection was established", url=self.url)
            retrying = " (still retrying in the background)" if machine.state == CONNECTING else ""
            error = failure.error
            self._connection.raised = error
            raise ConnectError(f"{error}{retrying}", url=error.url, status=error.status) from error.__cause__
        finally:
            self._telling(-1)

    def _connecting_word(self) -> str:
        return "reconnecting" if self._machine.reconnecting else "connecting"

    def wait_closed(self, timeout: float | None = None) -> CloseEvent:
        """Block until CLOSED and the close listeners have run; returns the close event.

        ``TimeoutError`` if still not closed after ``timeout`` seconds.
        """
        self._let_go()
        deadline = None if timeout is None else time.monotonic() + timeout
        if not self._connection.wait(self._fully_closed, timeout):
            raise TimeoutError(f"{self._shown} is still {self._machine.state.name} after {timeout}s")
        self._wait_archived(deadline)
        close = self._machine.close_event
        assert close is not None
        return close

    def _wait_archived(self, deadline: float | None) -> None:
        """Once closed, wait until the archive holds every row (all was handed over on closing)."""
        if self._archive is not None and self._machine.state == CLOSED and not nbws_loop.in_loop_thread():
            self._archive.written_by(deadline)

    def flush_archive(self, timeout: float | None = None) -> None:
        """Write every row received so far to the archive (``archive=``) now, and wait until it
        is written, so that ``nbws.read`` sees it; ``TimeoutError`` after ``timeout`` seconds."""
        if self._archive is None:
            raise ValueError(f"connection {self.name!r} has no archive; connect with archive=PATH")
        self._archive.flush(timeout)

    def _archive_failed(self, error: Exception) -> None:
        """A file of the archive could not be written (writer thread): an error event, never silent."""
        event = ErrorEvent(error, str(error))
        if not nbws_loop.call_soon_if_running(self._dispatcher.emit, "error", event):
            self._dispatcher.emit("error", event)  # (exiting: no loop thread to deliver it)

    def wait_closed_until(self, deadline: float) -> bool:
        """Whether it is closed by ``deadline`` (``time.monotonic()``); for closing many at once."""
        return self._connection.wait(self._fully_closed, max(0.0, deadline - time.monotonic()))

    def _fully_closed(self) -> bool:
        return self._machine.state == CLOSED and self._dispatcher.close_delivered

    def _released_when_closed(self) -> None:
        closed = self._machine.state == CLOSED
        if closed and not self._seen_closed:  # on entering CLOSED only: reconnect() reclaims
            registry.release(self)
        self._seen_closed = closed

    # -- sending ------------------------------------------------------------------------------

    def _closed_error(self, what: str) -> ConnectionClosedError:
        close = self._machine.close_event if self._machine.state == CLOSED else None
        detail = f" (code {close.code}{', ' + close.reason if close.reason else ''})" if close else ""
        return ConnectionClosedError(
            f"connection {self.name!r} to {self._shown} {what}{detail}; open a new one with nbws.connect()",
            code=close.code if close else None,
            reason=close.reason if close else "",
        )

    def send(self, data: str | bytes) -> None:
        """Send a text (``str``) or binary (``bytes``) message.

        While CONNECTING (reconnecting included), waits for the connection up to
        ``open_timeout``, then raises ``TimeoutError``. After close, raises
        ConnectionClosedError: nbws never drops data silently.
        """
        if isinstance(data, (bytearray, memoryview)):
            data = bytes(data)
        if not isinstance(data, (str, bytes)):
            raise TypeError(
                f"send() takes str or bytes, not {type(data).__name__}; use send_json() for objects"
            )
        self._let_go()
        if nbws_loop.in_loop_thread():  # from a listener: never block the loop
            nbws_loop.spawn(self._send_from_listener(data))
            return
        machine = self._machine
        if not self._connection.wait(lambda: machine.state != CONNECTING, self.open_timeout):
            raise TimeoutError(self._not_open_in_time())
        if machine.state != OPEN:
            if not machine.ever_opened and machine.state == CLOSED:
                self.wait_open(0)  # raises the ConnectError that says why it never opened
            raise self._closed_error("is closed" if machine.state == CLOSED else "is closing")
        self._readers.sending()
        try:
            sent = nbws_loop.submit(self._connection.send(data, self.open_timeout)).result()
        except TimeoutError:
            raise TimeoutError(self._not_open_in_time()) from None
        if not sent:
            raise self._closed_error("closed before the message was sent")

    def _not_open_in_time(self) -> str:
        attempt = f" (attempt {self._machine.attempts + 1})" if self._machine.attempts else ""
        return (
            f"{self._shown} is still {self._connecting_word()}{attempt} after "
            f"open_timeout={self.open_timeout}s; nothing was sent"
        )

    async def _send_from_listener(self, data: str | bytes) -> None:
        try:
            sent = await self._connection.send(data, self.open_timeout)
            error: Exception | None = (
                None if sent else self._closed_error("closed before the message was sent")
            )
        except TimeoutError:
            error = TimeoutError(self._not_open_in_time())
        if error is not None:
            message = f"nbws: send from a listener failed: {error}"
            self._dispatcher.emit("error", ErrorEvent(error, message))

    def send_json(self, obj: Any) -> None:
        """Send ``obj`` as a JSON text message (``JSON.stringify`` then ``send``)."""
        try:
            text = dumps(obj)
        except TypeError as exc:
            raise TypeError(f"cannot send this value as JSON: {exc}") from None
        self.send(text)

    # -- closing and reopening ----------------------------------------------------------------

    def close(self, code: int = 1000, reason: str = "") -> None:
        """Close with ``code`` (1000 or 3000-4999) and ``reason`` (<= 123 UTF-8 bytes).

        Idempotent, and it wins at any moment: with ``reconnect=True`` no further attempt is
        made. Outside listeners it waits (bounded) until CLOSED. Closing while CONNECTING
        abandons the handshake: error, then close 1006, as in the browser.
        """
        validate_close(code, reason)
        self._let_go()
        self._connection.request_close(code, reason)
        if not nbws_loop.in_loop_thread():
            deadline = time.monotonic() + CLOSE_TIMEOUT + 1
            if not self.wait_closed_until(deadline):
                self.drop("nbws dropped the connection: its closing handshake did not finish in time")
                self.wait_closed_until(time.monotonic() + 1)
            self._wait_archived(None)

    def request_close(self, code: int = 1000, reason: str = "") -> None:
        """Start closing without waiting (for closing many connections together)."""
        self._connection.request_close(code, reason)

    def drop(self, message: str) -> None:
        """End the connection at once, without a closing handshake (error, then close 1006)."""
        self._connection.drop(message)

    def die(self, message: str) -> None:
        """The loop thread died: end the connection from the calling thread (error, close 1006)."""
        self._connection.die(message)

    def reconnect(self) -> WebSocket:
        """Open the connection again, same URL and options (closing it first if it is not closed).

        Messages, counters and listeners are kept; the next open event has ``reconnect=True``.
        Returns at once in CONNECTING, like the constructor. An older connection whose name a
        newer one took cannot be reopened: use the newer one.
        """
        if nbws_loop.in_loop_thread():
            raise RuntimeError("reconnect() blocks until closed: call it outside listeners")
        replaced = ConnectionClosedError(
            f"the name {self.name!r} now belongs to a newer connection; use that one "
            f"(nbws.connections()[{self.name!r}]) or connect again"
        )
        if registry.replaced(self):
            raise replaced
        self.close()
        if self._machine.state != CLOSED:
            raise ConnectionClosedError(f"connection {self.name!r} did not finish closing; try again")
        if not registry.reclaim(self):
            raise replaced
        self._connection.request_reopen()
        self._connection.wait(lambda: self._machine.state != CLOSED, CLOSE_TIMEOUT)
        return self

    # -- iteration and context management -----------------------------------------------------

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def __iter__(self) -> Iterator[MessageEvent]:
        """Each message not yet read, blocking for the next, until the connection closes."""
        while True:
            try:
                yield self.recv()
            except ConnectionClosedError:
                return

    async def __aiter__(self) -> AsyncIterator[MessageEvent]:
        """``async for event in ws``: each message not yet read, until the connection closes."""
        while True:
            try:
                yield await self.arecv()
            except ConnectionClosedError:
                return

    def recv(self, timeout: float | None = None) -> MessageEvent:
        """The next message this reader has not seen yet, oldest first; blocks until one arrives.

        ``TimeoutError`` after ``timeout`` seconds; ConnectionClosedError once closed and every
        message has been read. An interrupt (Ctrl-C) raises KeyboardInterrupt and leaves the
        connection as it was.
        """
        self._let_go()
        return self._readers.recv(timeout)

    async def arecv(self, timeout: float | None = None) -> MessageEvent:
        """``recv`` for async code: ``event = await ws.arecv()``."""
        self._let_go()
        return await self._readers.arecv(timeout)

    def wait_for_messages(self, count: int = 1, timeout: float | None = None) -> int:
        """Block until ``count`` new messages arrived; returns how many were received in all.

        "New" counts from the later of: the connection's start, the first ``send`` after the
        previous wait, or the end of the previous wait. So ``send`` then ``wait_for_messages``
        never misses a reply that came back before the wait began. ``TimeoutError`` says how
        many arrived; ConnectionClosedError if the connection closes first. Interruptible.
        """
        self._let_go()
        return self._readers.wait_for_messages(count, timeout, self.name)

    # -- other views --------------------------------------------------------------------------

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

    def plot(
        self, y: str | Iterable[str], *, by: str | None = None, window: int | str | timedelta = 10_000
    ) -> Any:
        """A live chart (``nbws.LiveChart``) of column ``y`` (or a list of columns; dotted names
        such as ``book.bid`` too) against ``received_at``; ``by`` makes one series per value of
        that column; ``window`` is what each series keeps: a point count or a span such as
        ``"5min"``. Display it as the last expression of a cell."""
        from .chart import LiveChart  # anywidget is imported only here

        return LiveChart(self, y, by=by, window=window)

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


def connect(url: str, **kwargs: Any) -> WebSocket:
    """Same as ``WebSocket(url, **kwargs)``: returns at once, connecting in the background."""
    return WebSocket(url, **kwargs)
