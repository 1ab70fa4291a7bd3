"""The I/O around one connection's state machine, on nbws's loop thread: one run loop for all.

``Connection`` feeds the machine (``nbws.state``) what the transport reports, and does what the
machine answers: start a handshake, schedule a retry, send a close frame, cancel, abort, and hand
events to the dispatcher. With ``reconnect=False`` the retry policy simply never retries, so
there is one path for both. Every state change wakes blocked callers and calls the state hooks
(the panel subscribes there). Requests from other threads (close, reopen, drop) are posted to the
loop thread, so the machine is only ever touched there.
"""

from __future__ import annotations

import asyncio
import contextvars
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable
from typing import Any

from . import loop as nbws_loop
from .dispatch import Dispatcher
from .errors import ConnectionClosedError
from .events import ErrorEvent
from .readers import Readers, wait_until
from .state import (
    CLOSED,
    CONNECTING,
    OPEN,
    Abort,
    CancelHandshake,
    CancelRetry,
    Connect,
    Emit,
    Machine,
    ScheduleRetry,
    SendClose,
)

__all__ = ["Connection"]

# Sent messages remembered for the panel's log.
SENT_LOG_SIZE = 200
# How often the loop thread checks whether the creator of a connection is done (the hold).
HOLD_POLL_SECONDS = 0.005


class Connection:
    """Runs one connection: the machine, its transport, its listeners and its readers."""

    def __init__(
        self,
        machine: Machine,
        transport: Any,
        store: Any,
        dispatcher: Dispatcher,
        readers: Readers,
        origin: contextvars.Context,
        exiting: Callable[[], bool],
    ) -> None:
        self.machine = machine
        self.transport = transport
        self.store = store
        self.dispatcher = dispatcher
        self.readers = readers
        self._origin = origin
        self._exiting = exiting
        self.changed = threading.Condition()  # notified on every state change and failure
        self.conn: Any = None
        self.protocol = ""
        self.opened_at_ns: int | None = None
        self.told = 0  # callers blocked on the outcome: failures they raise need no print
        self.raised: BaseException | None = None  # the last failure a caller raised
        self.sent = self.bytes_sent = 0
        self.sent_log: deque[tuple[int, str | bytes]] = deque(maxlen=SENT_LOG_SIZE)
        self._attempt: asyncio.Task | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._settled: asyncio.Future | None = None  # resolved when OPEN or CLOSED (loop thread)
        self._hooks: list[Callable[[], Any]] = []
        self._hooks_lock = threading.Lock()
        dispatcher.on_close_delivered = self._state_changed
        dispatcher.someone_told = self._someone_told

    # -- from any thread ----------------------------------------------------------------------

    def start(self) -> None:
        nbws_loop.call_soon(self._begin)

    def request_close(self, code: int, reason: str) -> None:
        self._post(lambda: self._apply(self.machine.close_requested(code, reason)))

    def request_reopen(self) -> None:
        def reopen() -> None:
            self.dispatcher.close_delivered = False
            self._apply(self.machine.reopen())

        self._post(reopen)

    def drop(self, message: str) -> None:
        """End the connection now, without a closing handshake: error, then close 1006."""
        self._post(lambda: self._apply(self.machine.abort(message)))

    def die(self, message: str) -> None:
        """The loop thread died (call from the dying thread, its loop stopped): drop it now."""
        self._apply(self.machine.abort(message))

    def add_state_hook(self, hook: Callable[[], Any]) -> Callable[[], None]:
        """Call ``hook()`` on the loop thread after every state change; returns its remover."""
        with self._hooks_lock:  # copy-on-write: the loop thread iterates without the lock
            self._hooks = [*self._hooks, hook]

        def remove() -> None:
            with self._hooks_lock:
                self._hooks = [h for h in self._hooks if h is not hook]

        return remove

    def wait(self, ready: Callable[[], bool], timeout: float | None) -> bool:
        """Block until ``ready()`` (checked at each state change), interruptibly; False on timeout."""
        return wait_until(self.changed, ready, timeout)

    def _post(self, fn: Callable[[], Any]) -> None:
        if nbws_loop.in_loop_thread():
            fn()
        else:
            nbws_loop.call_soon(fn)

    # -- the loop thread ----------------------------------------------------------------------

    def _begin(self) -> None:
        self._poll_hold()
        self._apply(self.machine.start())

    def _poll_hold(self) -> None:
        if self.dispatcher.poll_hold():
            nbws_loop.get_loop().call_later(HOLD_POLL_SECONDS, self._poll_hold)

    def _apply(self, outputs: list[Any]) -> None:
        """Do what the machine said, in order, then tell whoever waits."""
        if not outputs:
            return  # nothing changed
        for out in outputs:
            if isinstance(out, Emit):
                self._emit(out)
            elif isinstance(out, Connect):
                self._attempt = nbws_loop.spawn(self._run_attempt())
                self._attempt.add_done_callback(self._cancelled_before_start)
            elif isinstance(out, ScheduleRetry):
                self._retry = nbws_loop.get_loop().call_later(out.delay, self._retry_due)
            elif isinstance(out, SendClose):
                nbws_loop.spawn(self._send_close(out.code, out.reason))
            elif isinstance(out, CancelHandshake) and self._attempt is not None:
                self._attempt.cancel()
            elif isinstance(out, CancelRetry) and self._retry is not None:
                self._retry.cancel()
            elif isinstance(out, Abort) and self.conn is not None:
                self.transport.abort(self.conn)
        self._state_changed()

    def _emit(self, out: Emit) -> None:
        if out.type == "close":
            self._state_changed()  # CLOSED before the close listeners run, and readers wake
        self.dispatcher.emit(out.type, out.event, out.quiet)

    def _someone_told(self, event: Any) -> bool:
        error = event.error
        told = self.told or (error is not None and error is self.raised)
        return bool(told) or self._exiting()

    def _state_changed(self) -> None:
        state = self.machine.state
        settled = self._settled
        if settled is not None and not settled.done() and state in (OPEN, CLOSED):
            settled.set_result(None)
        with self.changed:
            self.changed.notify_all()
        self.readers.wake()
        for hook in self._hooks:
            try:
                hook()
            except Exception:  # noqa: BLE001 - a front-end's bug must not stop the connection
                self._origin.run(traceback.print_exc)

    def _retry_due(self) -> None:
        self._retry = None
        self._apply(self.machine.retry_due())

    def _cancelled_before_start(self, task: asyncio.Task) -> None:
        # A task cancelled before its first step never runs its body, so nothing reported it.
        if task.cancelled():
            failure = self.transport.failure(asyncio.CancelledError())
            self._apply(self.machine.handshake_failed(failure))

    async def _run_attempt(self) -> None:
        """One handshake and, if it opens, the connection's whole life."""
        try:
            try:
                conn = await self.transport.open()
            except (asyncio.CancelledError, Exception) as exc:  # noqa: BLE001 - the machine decides
                self._apply(self.machine.handshake_failed(self.transport.failure(exc)))
                return
            self.conn = conn
            self.protocol = self.transport.subprotocol(conn)
            self.opened_at_ns = time.time_ns()
            opened = time.monotonic()
            self._apply(self.machine.handshake_done())
            if self.machine.state == OPEN:
                await self.transport.receive(conn, self.store, self.dispatcher, self.readers)
            await self.transport.wait_closed(conn)
            close, error = self.transport.outcome(conn)
            self._apply(self.machine.connection_lost(close, error, time.monotonic() - opened))
        except asyncio.CancelledError:  # close() as the handshake finished: drop what we have
            if self.conn is not None:
                self.transport.abort(self.conn)
            self._apply(self.machine.abort("closed before the connection was established"))
        except Exception as exc:  # noqa: BLE001 - a bug of ours: show it, abort, never die silently
            self._origin.run(traceback.print_exception, type(exc), exc, exc.__traceback__, file=sys.stderr)
            self._apply(self.machine.abort(f"nbws internal error: {exc!r}", exc))

    async def _send_close(self, code: int, reason: str) -> None:
        try:
            await self.transport.close(self.conn, code, reason)
        except Exception as exc:  # noqa: BLE001 - the receive loop sees the end either way
            message = f"nbws: sending the close frame failed: {exc!r}"
            self.dispatcher.emit("error", ErrorEvent(ConnectionClosedError(message), message))

    async def send(self, data: str | bytes, open_timeout: float | None) -> bool:
        """Send on the loop thread, first waiting (up to ``open_timeout``) while CONNECTING.

        True once sent; False when not OPEN (closed, or never opened); ``TimeoutError`` when
        still connecting after ``open_timeout``.
        """
        if self.machine.state == CONNECTING:
            if self._settled is None or self._settled.done():
                self._settled = asyncio.get_running_loop().create_future()
            await asyncio.wait_for(asyncio.shield(self._settled), open_timeout)
        if self.machine.state != OPEN or not await self.transport.send(self.conn, data):
            return False
        self.sent_log.append((time.time_ns(), data))
        self.sent += 1
        self.bytes_sent += len(data.encode()) if isinstance(data, str) and not data.isascii() else len(data)
        return True
