"""Exceptions raised by nbws.

The tree::

    NbwsError
    ├── ConnectError             the opening handshake failed (refused, DNS, HTTP status, TLS, timeout)
    ├── ConnectionClosedError    send/recv on a connection that is closed
    ├── ArchiveError             a file of the archive (``archive=``) could not be written
    └── JSONDecodeError          a message is not JSON (also a ValueError)

Invalid arguments (a URL without ws:// or wss://, a close code out of range) raise the builtin
``ValueError``; ``recv``/``wait_open`` timeouts raise the builtin ``TimeoutError``.
"""

from __future__ import annotations

__all__ = ["NbwsError", "ConnectError", "ConnectionClosedError", "ArchiveError", "JSONDecodeError"]


class NbwsError(Exception):
    """Base class of every exception nbws raises on its own account."""


class ConnectError(NbwsError):
    """The connection could not be opened; ``url`` says where and ``__cause__`` why."""

    def __init__(self, message: str, *, url: str, status: int | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.status = status


class ConnectionClosedError(NbwsError):
    """The connection is closed; ``code`` and ``reason`` are those of its close event."""

    def __init__(self, message: str, *, code: int | None = None, reason: str = "") -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason


class ArchiveError(NbwsError):
    """Rows could not be written to the archive (a full disk, a folder made read-only)."""


class JSONDecodeError(NbwsError, ValueError):
    """A message's data is not valid JSON."""
