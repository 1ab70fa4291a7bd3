"""The transport adapters: which one a connection uses (``adapter``) and what both share. The
adapters are ``nbws.websocketstransport`` (the default) and ``nbws.picowstransport``.

An adapter turns its library's objects and exceptions into what the connection's state machine
takes: a ``Failure`` for a failed handshake (with whether a retry may help), a ``CloseEvent``
(plus an ``ErrorEvent`` when the connection failed) for a connection that ended
(``close_outcome``, shared). Messages go straight from the parser into the store through
``message_sink``, the per-message hot path (for websockets via ``nbws.wsconnection``).
"""

from __future__ import annotations

import os
import socket
import ssl as ssl_module
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from websockets.exceptions import InvalidHandshake, InvalidStatus

from .errors import ConnectionClosedError
from .events import CloseEvent, ErrorEvent
from .wsconnection import MAX_FRAGMENTS

__all__ = [
    "MAX_MESSAGE_SIZE",
    "CLOSE_TIMEOUT",
    "Options",
    "TRANSPORTS",
    "TRANSPORT_VARIABLE",
    "adapter",
    "close_outcome",
    "describe_connect_failure",
    "message_sink",
    "not_websocket",
    "refused_upgrade",
]

# Browsers have no message size limit; websockets' 1 MiB default cuts off real snapshots.
MAX_MESSAGE_SIZE = 64 * 2**20
# Longest wait for the peer's answer to our close frame.
CLOSE_TIMEOUT = 10.0
# HTTP statuses on the upgrade that are worth retrying (websockets retries 500, 502-504 too).
RETRY_HTTP_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
# Close codes our side sends when it fails the connection (protocol error, bad data, too big).
FAILURE_CODES = frozenset({1002, 1003, 1007, 1009, 1011})
# Messages received between two yields of the GIL (see ``message_sink``).
YIELD_EVERY = 512
# The names of ``transport=``: websockets (the default), picows (``pip install "nbws[fast]"``).
TRANSPORTS = ("websockets", "picows")
# The environment variable that names the transport of connections made without transport=.
TRANSPORT_VARIABLE = "NBWS_TRANSPORT"


@dataclass(frozen=True)
class Options:
    """Everything a handshake needs; ``shown`` is the URL without secrets, ``secrets`` what to mask."""

    url: str
    shown: str
    headers: list[tuple[str, str]]
    subprotocols: list[str] | None
    open_timeout: float | None
    ping_interval: float | None
    ping_timeout: float | None
    max_size: int | None
    ssl: ssl_module.SSLContext | None
    secrets: Iterable[str] = ()


def adapter(name: str | None, options: Options) -> Any:
    """The transport adapter ``transport=name`` asks for (None: ``NBWS_TRANSPORT``, else
    websockets); a one-line ``ValueError`` for an unknown name, ``ImportError`` saying what to
    install when picows is missing."""
    where = ""
    if name is None:
        name, where = os.environ.get(TRANSPORT_VARIABLE) or "websockets", f" (from {TRANSPORT_VARIABLE})"
    if name == "websockets":
        from .websocketstransport import WebsocketsTransport  # (it imports this module)

        return WebsocketsTransport(options)
    if name == "picows":
        try:
            from .picowstransport import PicowsTransport
        except ImportError as exc:
            if exc.name != "picows":
                raise
            raise ImportError(f'transport="picows"{where} needs picows: pip install "nbws[fast]"') from None
        return PicowsTransport(options)
    raise ValueError(f"transport must be one of {', '.join(map(repr, TRANSPORTS))}, not {name!r}{where}")


def message_sink(store: Any, dispatcher: Any, readers: Any) -> Callable[[str | bytes, int], None]:
    """What a transport calls per message, ``sink(data, time_ns)``: a store append, a counter and
    two flag checks; listeners and blocked readers only when there are any. The hot path."""
    append = store.append
    let_others_run = time.sleep
    count = 0

    def receive_one(data: str | bytes, time_ns: int) -> None:
        nonlocal count
        append(data, time_ns)
        count += 1
        if not count % YIELD_EVERY:
            # A fast stream would hold the GIL for whole switch intervals (5 ms) at a time, so
            # the kernel's threads wait ~5 ms per step of every cell; yielding every 512
            # messages (about 3 ms at full speed) keeps cells responsive.
            let_others_run(0)
        if dispatcher.wants_messages:
            dispatcher.message(data, store.received - 1, time_ns)
        if readers.waiting:
            readers.wake()

    return receive_one


def close_outcome(
    rcvd: tuple[int, str] | None, sent: tuple[int, str] | None, rcvd_then_sent: bool | None, options: Options
) -> tuple[CloseEvent, ErrorEvent | None]:
    """A closing handshake (the close frames received and sent, as ``(code, reason)``, and
    whether ours answered theirs) as the browser's close event, plus an error event when the
    connection failed: dropped, or failed by us (1009 too big...)."""
    shown = options.shown
    if sent is not None and not rcvd_then_sent and sent[0] in FAILURE_CODES:
        code, reason = sent
        message = f"nbws closed {shown} with {code}: {_failure_text(code, reason, options)}"
        close = CloseEvent(code, reason, False)
    elif rcvd is None:
        message = f"connection to {shown} was lost without a close frame"
        close = CloseEvent(1006, "", False)
    else:
        return CloseEvent(*rcvd, True), None
    return close, ErrorEvent(ConnectionClosedError(message, code=close.code, reason=close.reason), message)


def _failure_text(code: int, reason: str, o: Options) -> str:
    """Why nbws failed the connection, and what the user can do."""
    if code == 1009 and reason == "too many fragments":
        # websockets >= 17.4 refuses a message in more fragments than this, whatever its size,
        # to bound the memory that tiny fragments cost; nbws leaves that defence in place.
        return (
            f"a message came in more than {MAX_FRAGMENTS:,} fragments, which websockets refuses; set the "
            "WEBSOCKETS_MAX_FRAGMENTS environment variable before websockets is imported to allow more"
        )
    if code == 1009:
        limit = "no limit" if o.max_size is None else f"max_size={o.max_size:,} bytes"
        return (
            f"a message was larger than {limit} allows ({reason}); "
            "connect with a larger max_size= (or None for no limit)"
        )
    if code == 1007:
        return "the server sent a text message that is not valid UTF-8"
    if code == 1011 and "keepalive" in reason:
        return f"no answer to a ping within ping_timeout={o.ping_timeout}s: the server or the network stalled"
    return f"the server broke the WebSocket protocol ({reason})"


def describe_connect_failure(exc: BaseException, url: str, open_timeout: float | None) -> str:
    """One line that says why the handshake failed and what to try."""
    parts = urlsplit(url)
    where = f"{parts.hostname}:{parts.port or (443 if parts.scheme == 'wss' else 80)}"
    if isinstance(exc, InvalidStatus):
        return refused_upgrade(url, exc.response.status_code, exc.response.reason_phrase)
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
        return not_websocket(url, exc)
    if isinstance(exc, socket.gaierror):
        return f"cannot resolve host {parts.hostname!r}; check the URL, and that this machine is online"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}; is the server running?"
    if isinstance(exc, TimeoutError):
        return f"no WebSocket handshake from {where} within open_timeout={open_timeout}s"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or exc or type(exc).__name__}"
    return f"cannot connect to {url}: {type(exc).__name__}: {exc}"


def refused_upgrade(url: str, status: int, phrase: str) -> str:
    return f"server at {url} refused the WebSocket upgrade with HTTP {status} {phrase}"


def not_websocket(url: str, why: object) -> str:
    return f"{url} did not answer with a WebSocket handshake ({why}); is it a WebSocket endpoint?"
