"""Checks of what the caller passes, before any I/O: URLs, close codes and reasons."""

from __future__ import annotations

from urllib.parse import urlsplit

from .redact import redact_url

__all__ = ["validate_url", "validate_close"]


def validate_url(url: str) -> str:
    """``url`` if it is a ws:// or wss:// URL with a host; else ``ValueError`` saying what to fix."""
    if not isinstance(url, str):
        raise TypeError(f"url must be a str like 'ws://host:port/path', not {type(url).__name__}")
    shown = redact_url(url)
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [ of an IPv6 address
        raise ValueError(f"invalid WebSocket URL {shown!r}: {exc}") from None
    if parts.scheme not in ("ws", "wss"):
        hint = ""
        if parts.scheme in ("http", "https"):
            scheme = "wss" if parts.scheme == "https" else "ws"
            hint = f"; did you mean {scheme}://{shown.split('://', 1)[1]}?"
        raise ValueError(f"invalid WebSocket URL {shown!r}: the scheme must be ws:// or wss://{hint}")
    if not parts.hostname:
        raise ValueError(f"invalid WebSocket URL {shown!r}: it has no host (ws://HOST[:PORT]/path)")
    try:
        port = parts.port
    except ValueError:
        port = 0
    if port == 0:
        raise ValueError(f"invalid WebSocket URL {shown!r}: the port must be a number 1-65535")
    if parts.fragment:
        raise ValueError(f"invalid WebSocket URL {shown!r}: a WebSocket URL has no #fragment")
    return url


def validate_close(code: int, reason: str) -> None:
    """The browser's rules: code 1000 or 3000-4999, reason at most 123 bytes of UTF-8."""
    if not isinstance(code, int) or not (code == 1000 or 3000 <= code <= 4999):
        raise ValueError(f"close code must be 1000 or in 3000-4999, not {code!r}")
    if not isinstance(reason, str):
        raise TypeError(f"close reason must be a str, not {type(reason).__name__}")
    if len(reason.encode("utf-8")) > 123:
        raise ValueError("close reason must be at most 123 bytes of UTF-8")
