"""nbws: WebSockets in Jupyter notebooks, the way browsers and Node.js 22 have them.

``ws = nbws.connect(url)`` opens a connection that lives on a background thread; messages
stream into ``ws.frame`` (a pandas DataFrame) and to your listeners. ``%load_ext nbws`` adds
the ``%ws_*`` magics. Importing nbws never imports IPython, ipywidgets or traitlets.
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
from .errors import ArchiveError, ConnectError, ConnectionClosedError, JSONDecodeError, NbwsError
from .events import CloseEvent, ErrorEvent, MessageEvent, OpenEvent
from .replay import replay

__version__ = "0.1.0"

__all__ = [
    "WebSocket",
    "connect",
    "connections",
    "close_all",
    "replay",
    "read",
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
    "ArchiveError",
    "LiveChart",
]


def read(path, start=None, end=None, *, not_json=False):
    """The rows archived at ``path`` (``archive=PATH``, ``nbws record --out PATH``) as a
    DataFrame with the columns and ``received_at`` index of ``ws.frame``; see
    ``nbws.archiveread.read`` (pandas and pyarrow are imported only now)."""
    from .archiveread import read as read_archive

    return read_archive(path, start, end, not_json=not_json)


def __getattr__(name: str):
    """``nbws.LiveChart`` without importing anywidget (and ipywidgets) with nbws."""
    if name == "LiveChart":
        from .chart import LiveChart

        return LiveChart
    raise AttributeError(f"module 'nbws' has no attribute {name!r}")


def load_ipython_extension(ipython):
    """``%load_ext nbws``: register the %ws_* magics (IPython is imported only now)."""
    from .magics import load_ipython_extension as load

    load(ipython)


def unload_ipython_extension(ipython):
    """``%unload_ext nbws``: close every connection."""
    from .magics import unload_ipython_extension as unload

    unload(ipython)
