"""The transport adapter for websockets, the default (``transport="websockets"``).

websockets' asyncio client does the handshake, keepalive, compression and closing handshake;
its frames reach the store through ``nbws.wsconnection.StoreConnection`` and the shared
``nbws.transport.message_sink``. This adapter turns websockets' exceptions and its record of the
closing handshake into what the connection's state machine takes.
"""

from __future__ import annotations

import asyncio
import ssl as ssl_module
from typing import Any

from websockets.asyncio.client import connect as ws_connect
from websockets.asyncio.client import process_exception as websockets_verdict
from websockets.exceptions import ConnectionClosed, InvalidStatus

from .errors import ConnectError
from .events import CloseEvent, ErrorEvent
from .redact import redact_text
from .state import Failure
from .transport import (
    CLOSE_TIMEOUT,
    RETRY_HTTP_STATUSES,
    Options,
    close_outcome,
    describe_connect_failure,
    message_sink,
)
from .wsconnection import StoreConnection

__all__ = ["WebsocketsTransport"]


class WebsocketsTransport:
    """Opens, feeds and closes connections with websockets' asyncio client (loop thread only)."""

    name = "websockets"

    def __init__(self, options: Options) -> None:
        self.options = options

    async def open(self) -> Any:
        """The handshake; returns the open connection or raises what websockets raised."""
        o = self.options
        kwargs: dict[str, Any] = {} if o.ssl is None else {"ssl": o.ssl}
        return await ws_connect(
            o.url,
            additional_headers=o.headers or None,
            subprotocols=o.subprotocols,
            open_timeout=o.open_timeout,
            ping_interval=o.ping_interval,
            ping_timeout=o.ping_timeout,
            # A peer that does not answer pings within ping_timeout will not answer a close either.
            close_timeout=min(CLOSE_TIMEOUT, o.ping_timeout or CLOSE_TIMEOUT),
            max_size=o.max_size,
            create_connection=StoreConnection,
            **kwargs,
        )

    @staticmethod
    def subprotocol(conn: Any) -> str:
        return conn.subprotocol or ""

    def failure(self, exc: BaseException) -> Failure:
        """What a failed handshake means for the user and whether retrying may help.

        Retried: network errors, timeouts, HTTP 408/429/500/502/503/504. Not retried: other HTTP
        statuses (401, 403, 404...), TLS failures, servers that are not WebSocket servers.
        """
        if isinstance(exc, ssl_module.SSLError):
            retryable = False
        elif isinstance(exc, InvalidStatus):
            retryable = exc.response.status_code in RETRY_HTTP_STATUSES
        elif isinstance(exc, Exception):
            retryable = websockets_verdict(exc) is None  # it may return another exception: fatal
        else:
            retryable = False
        o = self.options
        message = describe_connect_failure(exc, o.shown, o.open_timeout)
        message = redact_text(message, o.secrets)  # a library's text may quote a header
        status = exc.response.status_code if isinstance(exc, InvalidStatus) else None
        error = ConnectError(message, url=o.url, status=status)
        error.__cause__ = None if isinstance(exc, asyncio.CancelledError) else exc
        return Failure(message, error, retryable)

    @staticmethod
    async def receive(conn: StoreConnection, store: Any, dispatcher: Any, readers: Any) -> None:
        """Deliver messages into the store until the connection ends."""
        conn.deliver_to(message_sink(store, dispatcher, readers))
        await conn.wait_closed()
        if conn.internal_error is not None:
            raise conn.internal_error

    @staticmethod
    async def send(conn: Any, data: str | bytes) -> bool:
        """Send one message; False if the connection closed first."""
        try:
            await conn.send(data)
        except ConnectionClosed:
            return False
        return True

    @staticmethod
    async def close(conn: Any, code: int, reason: str) -> None:
        await conn.close(code, reason)

    @staticmethod
    async def wait_closed(conn: Any) -> None:
        await conn.wait_closed()

    @staticmethod
    def abort(conn: Any) -> None:
        conn.transport.abort()

    def outcome(self, conn: Any) -> tuple[CloseEvent, ErrorEvent | None]:
        """websockets' record of the closing handshake as the browser's close event, plus an
        error event when the connection failed (see ``close_outcome``)."""
        protocol = conn.protocol
        rcvd, sent = protocol.close_rcvd, protocol.close_sent
        return close_outcome(
            None if rcvd is None else (int(rcvd.code), rcvd.reason),
            None if sent is None else (int(sent.code), sent.reason),
            protocol.close_rcvd_then_sent,
            self.options,
        )
