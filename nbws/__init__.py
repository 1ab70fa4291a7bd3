"""nbws: WebSockets in Jupyter notebooks, the way browsers and Node.js 22 have them.

``ws = nbws.connect(url)`` opens a connection that lives on a background thread; messages
stream into ``ws.frame`` (a pandas DataFrame) and to your listeners.
Importing nbws never imports IPython, ipywidgets or traitlets.
"""

from __future__ import annotations

from .client import (
    CLOSED,
    CLOSING,
    CONNECTING,
    OPEN,
    ReadyState,
    WebSocket,
    close_all,
    connect,
    connections,
)
from .errors import ConnectError, ConnectionClosedError, JSONDecodeError, NbwsError
from .events import CloseEvent, ErrorEvent, MessageEvent, OpenEvent

__version__ = "0.1.0"

__all__ = [
    "WebSocket",
    "connect",
    "connections",
    "close_all",
    "ReadyState",
    "CONNECTING",
    "OPEN",
    "CLOSING",
    "CLOSED",
    "OpenEvent",
    "MessageEvent",
    "CloseEvent",
    "ErrorEvent",
    "NbwsError",
    "ConnectError",
    "ConnectionClosedError",
    "JSONDecodeError",
]
