"""websockets' client connection, handing each message to a sink as soon as its frames are parsed.

websockets' ``recv()`` queues every frame in an assembler and hands messages out through a few
coroutines; a bare ``recv`` loop spends about a fifth of its time there. nbws stores every
message anyway, so ``StoreConnection`` (websockets' documented ``create_connection=`` hook) takes
data frames straight from websockets' parser in ``process_event``, reassembles fragments, decodes
text and calls the sink with ``(data, time_ns)``. Everything else (handshake, pings, closing,
``max_size``) stays websockets' own. Failures do what ``recv()`` does: invalid UTF-8 fails the
connection with 1007, too many fragments with 1009.

Messages that arrive before ``deliver_to`` (in the same packet as the handshake's answer) wait,
with their arrival times, and go to the sink first, so the open event comes before any message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from websockets import exceptions as websockets_exceptions
from websockets.asyncio import messages as websockets_messages
from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed
from websockets.frames import CloseCode, Frame, Opcode

__all__ = ["StoreConnection", "MAX_FRAGMENTS"]

TEXT, BINARY, CONT = Opcode.TEXT, Opcode.BINARY, Opcode.CONT

Sink = Callable[[Any, int], Any]

# websockets >= 17.4 refuses a message in more fragments than this (None: no limit before).
MAX_FRAGMENTS: int | None = getattr(websockets_messages, "MAX_FRAGMENTS", None)


class StoreConnection(ClientConnection):
    """A ClientConnection whose messages go to ``deliver_to``'s sink instead of ``recv()``."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._sink: Sink = self._keep_early
        self._early: list[tuple[Any, int]] = []
        self._fragments: list[Frame] = []
        self._failed = False  # the connection is failing: drop what still comes
        self._failing: Any = None  # the task that fails it (kept: a task must be referenced)
        self.internal_error: BaseException | None = None  # what the sink raised, if it did

    def deliver_to(self, sink: Sink) -> None:
        """From now on call ``sink(data, time_ns)`` per message (``str`` for text, ``bytes``
        for binary), starting with those that arrived before."""
        early, self._early = self._early, []
        self._sink = sink
        for data, time_ns in early:
            if not self._deliver(data, time_ns):
                return

    def _keep_early(self, data: Any, time_ns: int) -> None:
        self._early.append((data, time_ns))

    def process_event(self, event: Any) -> None:
        """websockets calls this per frame as it parses them (and once for the handshake)."""
        if event.__class__ is Frame and event.fin and not self._fragments and not self._failed:
            # The per-message path: a whole text or binary message in one frame.
            opcode = event.opcode
            if opcode is TEXT:
                try:
                    data = event.data.decode()
                except UnicodeDecodeError as exc:
                    return self._invalid_utf8(exc)
                self._deliver(data, time.time_ns())
                return None
            if opcode is BINARY:
                self._deliver(bytes(event.data), time.time_ns())
                return None
        return self._other_event(event)

    def _other_event(self, event: Any) -> None:
        """The handshake's answer, control frames, fragments, and frames after a failure."""
        if self.response is None or event.__class__ is not Frame:
            return super().process_event(event)
        opcode = event.opcode
        if opcode is not TEXT and opcode is not BINARY and opcode is not CONT:
            return super().process_event(event)  # ping, pong, close
        if self._failed:
            return None
        self._fragments.append(event)
        if MAX_FRAGMENTS is not None and len(self._fragments) > MAX_FRAGMENTS:
            too_many = getattr(websockets_exceptions, "TooManyFragments", ValueError)(MAX_FRAGMENTS)
            return self._fail(CloseCode.MESSAGE_TOO_BIG, "too many fragments", too_many)
        if not event.fin:
            return None
        frames, self._fragments = self._fragments, []
        payload = b"".join(frame.data for frame in frames)
        if frames[0].opcode is TEXT:
            try:
                data = payload.decode()
            except UnicodeDecodeError as exc:
                return self._invalid_utf8(exc)
        else:
            data = payload
        self._deliver(data, time.time_ns())
        return None

    def _deliver(self, data: Any, time_ns: int) -> bool:
        try:
            self._sink(data, time_ns)
        except Exception as exc:  # noqa: BLE001 - a bug of ours: end the connection, tell receive()
            self.internal_error = exc
            self._failed = True
            self.transport.abort()
            return False
        return True

    def _invalid_utf8(self, exc: UnicodeDecodeError) -> None:
        self._fail(CloseCode.INVALID_DATA, f"{exc.reason} at position {exc.start}", exc)

    def _fail(self, code: CloseCode, reason: str, exc: BaseException) -> None:
        """Fail the connection as ``recv()`` would (from a parser callback: in a task)."""
        self._failed = True
        self._fragments = []
        if hasattr(self, "set_connection_exc"):  # (newer websockets: the cause of close_exc)
            self.set_connection_exc(exc)

        async def fail() -> None:
            try:
                async with self.send_context():
                    self.protocol.fail(code, reason)
            except ConnectionClosed:
                pass

        self._failing = self.loop.create_task(fail())
