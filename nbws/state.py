"""The connection's states and events as a pure machine, like websockets' sans-I/O protocol.

``Machine`` is fed inputs (``start``, ``handshake_done``, ``handshake_failed``,
``connection_lost``, ``close_requested``, ``retry_due``, ``reopen``, ``abort``) and answers with
outputs: events to dispatch (``Emit``) and actions for the I/O layer (``Connect``,
``ScheduleRetry``, ``SendClose``, ``CancelHandshake``, ``CancelRetry``, ``Abort``). It has no
threads, no clocks and no asyncio; the caller feeds it from one thread (nbws's loop thread) and
does what the outputs say. Messages do not change the state, so they go from the transport to
the store without passing through here (the hot path).

The WHATWG order holds by construction: the state is already CLOSED when the ``error`` and
``close`` of a closing connection are emitted, and an error always comes before its close.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

from .errors import ConnectError, ConnectionClosedError
from .events import CloseEvent, ErrorEvent, OpenEvent
from .retry import RetryPolicy

__all__ = [
    "ReadyState",
    "CONNECTING",
    "OPEN",
    "CLOSING",
    "CLOSED",
    "Failure",
    "Emit",
    "Connect",
    "ScheduleRetry",
    "SendClose",
    "CancelHandshake",
    "CancelRetry",
    "Abort",
    "Machine",
]


class ReadyState(enum.IntEnum):
    """The browser's ``readyState`` values."""

    CONNECTING = 0
    OPEN = 1
    CLOSING = 2
    CLOSED = 3


CONNECTING, OPEN, CLOSING, CLOSED = ReadyState


@dataclass(frozen=True)
class Failure:
    """A failed handshake: one line for the user, the error to raise, whether a retry may help."""

    message: str
    error: ConnectError
    retryable: bool = False


@dataclass(frozen=True)
class Emit:
    """Dispatch ``event`` to the ``type`` listeners. ``quiet``: the user caused it (or is told
    otherwise), so an error nobody listens to need not be printed."""

    type: str
    event: Any
    quiet: bool = False


@dataclass(frozen=True)
class Connect:
    """Start a handshake."""


@dataclass(frozen=True)
class ScheduleRetry:
    """Feed ``retry_due()`` after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True)
class SendClose:
    """Start the closing handshake of the open connection."""

    code: int
    reason: str


@dataclass(frozen=True)
class CancelHandshake:
    """Stop the handshake in flight; it then reports ``handshake_failed``."""


@dataclass(frozen=True)
class CancelRetry:
    """Forget the scheduled ``retry_due``."""


@dataclass(frozen=True)
class Abort:
    """Drop the transport now, without a closing handshake."""


class Machine:
    """One connection's state: CONNECTING, OPEN, CLOSING, CLOSED, and what happens between.

    Between reconnect attempts the state is CONNECTING. A close request wins at any moment: the
    next state is CLOSED and no attempt follows. Read ``state``, ``reconnects``, ``attempts``,
    ``reconnecting``, ``close_event`` and ``last_failure`` from any thread; feed inputs from one.
    """

    def __init__(self, policy: RetryPolicy, url: str) -> None:
        self.policy = policy
        self.url = url  # for the errors the machine makes itself
        self.state = CONNECTING
        self.close_request: tuple[int, str] | None = None
        self.close_event: CloseEvent | None = None
        self.last_failure: Failure | None = None  # the latest failed handshake
        self.reconnects = 0  # times the connection opened again after its first open
        self.attempts = 0  # failed handshakes since it was last open
        self.ever_opened = False
        self.handshaking = False
        self.retry_scheduled = False

    @property
    def reconnecting(self) -> bool:
        """CONNECTING again after a drop or a failed attempt."""
        return self.state == CONNECTING and (self.ever_opened or self.attempts > 0)

    # -- inputs -------------------------------------------------------------------------------

    def start(self) -> list[Any]:
        """The connection was created (or reopened): start the first handshake."""
        if self.close_request is not None:  # closed before it started
            return self._closed(*self._abandoned(), quiet=True)
        self.handshaking = True
        return [Connect()]

    def handshake_done(self) -> list[Any]:
        """The opening handshake succeeded."""
        self.handshaking = False
        if self.state != CONNECTING:
            return [Abort()]
        if self.close_request is not None:  # close() won the race with the handshake's end
            self.state = CLOSING
            return [SendClose(*self.close_request)]
        reopened = self.ever_opened
        if reopened:
            self.reconnects += 1
        self.state, self.ever_opened, self.attempts, self.last_failure = OPEN, True, 0, None
        self.policy.opened()
        return [Emit("open", OpenEvent(reconnect=reopened))]

    def handshake_failed(self, failure: Failure) -> list[Any]:
        """The opening handshake failed (or was cancelled by ``close_requested``)."""
        self.handshaking = False
        if self.state == CLOSED:
            return []
        self.last_failure = failure
        if self.close_request is not None:
            return self._closed(*self._abandoned(), quiet=True)
        delay = self.policy.after_failure(failure.retryable)
        if delay is None:
            return self._closed(CloseEvent(1006, "", False), ErrorEvent(failure.error, failure.message))
        self.attempts += 1
        return self._retry(failure.error, f"{failure.message}; reconnecting (attempt {self.attempts})", delay)

    def connection_lost(self, close: CloseEvent, error: ErrorEvent | None, lived: float) -> list[Any]:
        """The open connection ended: ``close`` as the browser would report it, ``error`` when it
        failed, ``lived`` seconds after it opened."""
        if self.state == CLOSED:
            return []
        delay = None if self.close_request is not None else self.policy.after_drop(close.code, lived)
        if delay is None:
            return self._closed(close, error)
        why = error.message if error is not None else f"closed with {close.code} {close.reason}".rstrip()
        return self._retry(error.error if error else None, f"{why}; reconnecting in {delay:.1f}s", delay)

    def retry_due(self) -> list[Any]:
        """The delay of a ``ScheduleRetry`` has passed."""
        if not self.retry_scheduled or self.state != CONNECTING:
            return []
        self.retry_scheduled = False
        self.handshaking = True
        return [Connect()]

    def close_requested(self, code: int, reason: str) -> list[Any]:
        """The user asked to close. Idempotent; it wins over any reconnect."""
        if self.close_request is not None or self.state == CLOSED:
            return []
        self.close_request = (code, reason)
        if self.state == OPEN:
            self.state = CLOSING
            return [SendClose(code, reason)]
        if self.handshaking:
            return [CancelHandshake()]
        if self.retry_scheduled:  # waiting between attempts: nothing to cancel but the wait
            self.retry_scheduled = False
            return [CancelRetry(), *self._closed(*self._abandoned(), quiet=True)]
        return []  # not started yet: start() will see the request

    def reopen(self) -> list[Any]:
        """Open a CLOSED connection again (``WebSocket.reconnect()``)."""
        if self.state != CLOSED:
            raise RuntimeError(f"reopen() needs a CLOSED connection, not {self.state.name}")
        self.state, self.close_request, self.close_event, self.last_failure = CONNECTING, None, None, None
        self.attempts = 0
        self.handshaking = True
        return [Connect()]

    def abort(self, message: str, error: BaseException | None = None) -> list[Any]:
        """Something outside the protocol ended the connection (an internal error, the loop
        thread dying, the interpreter exiting): error, then close 1006, and no retry."""
        if self.state == CLOSED:
            return []
        cancel = [CancelHandshake()] if self.handshaking else []
        cancel += [CancelRetry()] if self.retry_scheduled else []
        self.handshaking = self.retry_scheduled = False
        closed_error = error if error is not None else ConnectionClosedError(message, code=1006)
        return [
            Abort(),
            *cancel,
            *self._closed(CloseEvent(1006, "", False), ErrorEvent(closed_error, message)),
        ]

    # -- helpers ------------------------------------------------------------------------------

    def _retry(self, error: BaseException | None, message: str, delay: float) -> list[Any]:
        self.state = CONNECTING
        self.retry_scheduled = True
        return [Emit("error", ErrorEvent(error, message)), ScheduleRetry(delay)]

    def _abandoned(self) -> tuple[CloseEvent, ErrorEvent]:
        message = "closed before the connection was established"
        return CloseEvent(1006, "", False), ErrorEvent(ConnectError(message, url=self.url), message)

    def _closed(self, close: CloseEvent, error: ErrorEvent | None, quiet: bool = False) -> list[Any]:
        self.state = CLOSED
        self.close_event = close
        self.handshaking = self.retry_scheduled = False
        out: list[Any] = [] if error is None else [Emit("error", error, quiet)]
        return [*out, Emit("close", close)]
