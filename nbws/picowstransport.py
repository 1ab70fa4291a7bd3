"""The transport adapter for picows (``transport="picows"``; ``pip install "nbws[fast]"``).

picows parses frames in compiled code and calls ``on_ws_frame`` per frame; this adapter turns
frames into messages for the same sink as websockets' adapter (``nbws.transport.message_sink``)
and does what picows leaves to its user, the way websockets does it: reassembling fragmented
messages (``max_size`` counts the whole message), refusing text that is not UTF-8 (1007),
frames with reserved bits set or continuations out of place (1002), and answering the server's
close frame. picows validates close frames, answers pings and keeps the record of the closing
handshake that ``close_outcome`` reads. It offers no compression extension, so servers send
uncompressed frames (websockets negotiates permessage-deflate); keepalive pings go every
``ping_interval`` seconds, as websockets', and a peer silent for ``ping_timeout`` is dropped
with 1011, as websockets does.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from typing import Any

from picows import (
    WSAutoPingStrategy,
    WSCloseCode,
    WSHandshakeError,
    WSInvalidStatusError,
    WSListener,
    WSMsgType,
    WSProtocolError,
    ws_connect,
)

from .errors import ConnectError
from .events import CloseEvent, ErrorEvent
from .redact import redact_text
from .state import Failure
from .transport import (
    CLOSE_TIMEOUT,
    FAILURE_CODES,
    RETRY_HTTP_STATUSES,
    Options,
    close_outcome,
    describe_connect_failure,
    message_sink,
    not_websocket,
    refused_upgrade,
)

__all__ = ["PicowsTransport"]

TEXT, BINARY, CONTINUATION, CLOSE = WSMsgType.TEXT, WSMsgType.BINARY, WSMsgType.CONTINUATION, WSMsgType.CLOSE
NO_LIMIT = 2**62  # picows wants a number for its frame size limit
# picows logs every failure it handles; nbws reports them itself, as error and close events.
_LOGGER = logging.getLogger("nbws.picows")
_LOGGER.propagate = False
_LOGGER.addHandler(logging.NullHandler())


class _Listener(WSListener):
    """One connection's frames: whole messages to the sink (those before ``deliver_to`` wait)."""

    def __init__(self, max_size: int | None) -> None:
        super().__init__()
        self.max_size = NO_LIMIT if max_size is None else max_size
        self.transport: Any = None
        self._sink: Any = self._keep_early
        self._early: list[tuple[Any, int]] = []
        self._fragments: list[bytes] = []
        self._fragmented_text = False
        self._fragmented_size = 0
        self.keepalive_failed = False
        self.invalid_close = False  # the server's close frame had a code no one may send
        self._frames_after_failure = 0

    def deliver_to(self, sink: Any) -> None:
        """From now on call ``sink(data, time_ns)`` per message, starting with those that
        arrived before."""
        early, self._early = self._early, []
        for data, time_ns in early:
            sink(data, time_ns)
        self._sink = sink

    def _keep_early(self, data: Any, time_ns: int) -> None:
        self._early.append((data, time_ns))

    def on_ws_connected(self, transport: Any) -> None:
        self.transport = transport

    def on_ws_frame(self, transport: Any, frame: Any) -> None:
        kind = frame.msg_type
        if (
            frame.fin
            and not self._fragments
            and not (frame.rsv1 or frame.rsv2 or frame.rsv3)
            and not transport.is_close_frame_sent
        ):
            # The per-message path: a whole text or binary message in one frame.
            if kind is TEXT:
                try:
                    data = frame.get_payload_as_utf8_text()
                except UnicodeDecodeError:
                    raise WSProtocolError(WSCloseCode.INVALID_TEXT, "invalid UTF-8") from None
                self._sink(data, time.time_ns())
                return
            if kind is BINARY:
                self._sink(frame.get_payload_as_bytes(), time.time_ns())
                return
        self._other_frame(transport, frame, kind)

    def _other_frame(self, transport: Any, frame: Any, kind: Any) -> None:
        """Fragments, close frames, pongs, frames that break the protocol, and frames after
        the connection failed (picows goes on parsing until it disconnects: they are dropped)."""
        if transport.is_close_frame_sent and kind is not CLOSE and self._failed(transport, frame):
            return
        if frame.rsv1 or frame.rsv2 or frame.rsv3:
            raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, "reserved bits must be 0")
        if kind is CLOSE:
            if not transport.is_close_frame_sent:  # (their close first: answer it as websockets does)
                if frame.payload_size == 0:
                    transport.send(CLOSE, b"")  # no status: an empty close frame back
                elif _valid_close_code(int(frame.get_close_code().value)):
                    transport.send_close(frame.get_close_code(), frame.get_close_message())
                else:  # (picows lets 0, 1006 and 5000 on through; websockets says it so)
                    self.invalid_close = True
                    raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, "invalid status code")
            transport.disconnect()
            return
        if kind is not TEXT and kind is not BINARY and kind is not CONTINUATION:
            return  # pongs (picows answers pings itself)
        if (kind is CONTINUATION) != bool(self._fragments):
            wrong = "unexpected" if kind is CONTINUATION else "expected a"
            raise WSProtocolError(WSCloseCode.PROTOCOL_ERROR, f"{wrong} continuation frame")
        if kind is not CONTINUATION:
            self._fragmented_text = kind is TEXT
            self._fragmented_size = 0
        self._fragmented_size += frame.payload_size
        if self._fragmented_size > self.max_size:
            too_big = f"over size limit ({self._fragmented_size} > {self.max_size} bytes)"
            raise WSProtocolError(WSCloseCode.MESSAGE_TOO_BIG, too_big)
        self._fragments.append(frame.get_payload_as_bytes())
        if not frame.fin:
            return
        payload = b"".join(self._fragments)
        self._fragments = []
        if not self._fragmented_text:
            self._sink(payload, time.time_ns())
            return
        try:
            text = payload.decode()
        except UnicodeDecodeError:
            raise WSProtocolError(WSCloseCode.INVALID_TEXT, "invalid UTF-8") from None
        self._sink(text, time.time_ns())

    def _failed(self, transport: Any, frame: Any) -> bool:
        """Whether ``frame`` comes after picows failed the connection, to be dropped. picows
        parses one frame ahead: the whole frame before the one that failed is delivered after
        the close frame went out (kept, as websockets keeps it); what it parses later is not."""
        if int(transport.close_handshake.sent.code.value) not in FAILURE_CODES:
            return False  # (closing normally: messages still arrive until their close frame)
        first = not self._frames_after_failure
        self._frames_after_failure += 1
        return not (first and frame.payload_size <= self.max_size)

    def on_ws_disconnected(self, transport: Any) -> None:
        handshake = transport.close_handshake
        sent = None if handshake is None else handshake.sent
        if sent is not None and sent.code is WSCloseCode.GOING_AWAY and "ping" in sent.reason:
            self.keepalive_failed = True


class PicowsTransport:
    """Opens, feeds and closes connections with picows (loop thread only)."""

    name = "picows"

    def __init__(self, options: Options) -> None:
        self.options = options

    async def open(self) -> _Listener:
        """The handshake; returns the open connection's listener or raises what picows raised."""
        o = self.options
        headers = list(o.headers)
        if o.subprotocols:
            headers.append(("Sec-WebSocket-Protocol", ", ".join(o.subprotocols)))
        keepalive = o.ping_interval is not None and o.ping_timeout is not None
        listener = _Listener(o.max_size)
        connect = ws_connect(
            lambda: listener,
            o.url,
            ssl_context=o.ssl,
            websocket_handshake_timeout=None,  # (open_timeout bounds the whole of it)
            enable_auto_ping=keepalive,
            auto_ping_idle_timeout=o.ping_interval if keepalive else 10,
            auto_ping_reply_timeout=min(o.ping_timeout, o.ping_interval) if keepalive else 10,
            auto_ping_strategy=WSAutoPingStrategy.PING_PERIODICALLY,
            max_frame_size=listener.max_size,
            extra_headers=headers or None,
            max_redirects=10,  # (as websockets)
            logger_name=_LOGGER,
        )
        transport, connected = await asyncio.wait_for(connect, o.open_timeout)
        if connected is None or transport.response is None:  # (picows returns so on an early EOF)
            transport.disconnect(graceful=False)
            raise WSHandshakeError("the connection closed before an answer to the upgrade came")
        protocol = self.subprotocol(listener)
        if protocol and protocol not in (o.subprotocols or []):
            transport.disconnect(graceful=False)
            raise WSHandshakeError(f"the server chose subprotocol {protocol!r}, which was not offered")
        return listener

    @staticmethod
    def subprotocol(conn: _Listener) -> str:
        return conn.transport.response.headers.get("Sec-WebSocket-Protocol", "")

    def failure(self, exc: BaseException) -> Failure:
        """What a failed handshake means and whether retrying may help (as websockets' adapter)."""
        o = self.options
        status = None
        if isinstance(exc, WSInvalidStatusError) and exc.response is not None:
            status = int(exc.response.status)
            retryable = status in RETRY_HTTP_STATUSES
            message = refused_upgrade(o.shown, status, exc.response.status.phrase)
        elif isinstance(exc, WSHandshakeError):
            retryable = False
            message = not_websocket(o.shown, exc)
        else:
            retryable = isinstance(exc, (OSError, TimeoutError)) and not isinstance(exc, ssl.SSLError)
            message = describe_connect_failure(exc, o.shown, o.open_timeout)
        message = redact_text(message, o.secrets)
        error = ConnectError(message, url=o.url, status=status)
        error.__cause__ = None if isinstance(exc, asyncio.CancelledError) else exc
        return Failure(message, error, retryable)

    @staticmethod
    async def receive(conn: _Listener, store: Any, dispatcher: Any, readers: Any) -> None:
        """Deliver messages into the store until the connection ends."""
        conn.deliver_to(message_sink(store, dispatcher, readers))
        await _disconnected(conn.transport)

    @staticmethod
    async def send(conn: _Listener, data: str | bytes) -> bool:
        """Send one message; False if the connection closed first."""
        transport = conn.transport
        if transport.is_close_frame_sent or transport.is_disconnected:
            return False
        transport.send(TEXT if isinstance(data, str) else BINARY, data)
        return True

    @staticmethod
    async def close(conn: _Listener, code: int, reason: str) -> None:
        """Send our close frame, then wait (up to ``CLOSE_TIMEOUT``) for the server's answer."""
        transport = conn.transport
        if not transport.is_close_frame_sent:
            transport.send_close(WSCloseCode(code), reason.encode())
        try:
            await asyncio.wait_for(_disconnected(transport), CLOSE_TIMEOUT)
        except TimeoutError:
            transport.disconnect(graceful=False)

    @staticmethod
    async def wait_closed(conn: _Listener) -> None:
        await _disconnected(conn.transport)

    @staticmethod
    def abort(conn: _Listener) -> None:
        if conn.transport is not None:
            conn.transport.disconnect(graceful=False)

    def outcome(self, conn: _Listener) -> tuple[CloseEvent, ErrorEvent | None]:
        """picows' record of the closing handshake as the browser's close event (see
        ``nbws.transport.close_outcome``); a keepalive failure reads as websockets' 1011."""
        handshake = conn.transport.close_handshake
        rcvd = sent = None
        rcvd_then_sent = False
        if handshake is not None:
            rcvd, sent = _close_frame(handshake.recv), _close_frame(handshake.sent)
            rcvd_then_sent = bool(handshake.recv_then_sent)
        if conn.keepalive_failed:
            sent, rcvd_then_sent = (1011, "keepalive ping timeout"), False
        if conn.invalid_close:  # (as websockets: not a close frame received, a protocol error)
            rcvd, rcvd_then_sent = None, False
        return close_outcome(rcvd, sent, rcvd_then_sent, self.options)


async def _disconnected(transport: Any) -> None:
    """Wait until picows has disconnected. It raises the ``WSProtocolError`` with which nbws
    failed the connection: the closing handshake says how it ended, so that is not an error here."""
    try:
        await transport.wait_disconnected()
    except WSProtocolError:
        pass


def _valid_close_code(code: int) -> bool:
    """Whether a close frame may carry ``code`` (RFC 6455 7.4, and the IANA registry's 1012-1014;
    websockets' rule)."""
    return 1000 <= code <= 1003 or 1007 <= code <= 1014 or 3000 <= code <= 4999


def _close_frame(info: Any) -> tuple[int, str] | None:
    """A close frame picows recorded as ``(code, reason)``; no status is 1005, as browsers say."""
    if info is None:
        return None
    code = int(info.code.value)
    return (code or 1005), info.reason or ""
