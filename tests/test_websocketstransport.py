"""nbws.websocketstransport: what websockets' failed handshakes and its limits mean for the user."""

from __future__ import annotations

from websockets.asyncio import messages as websockets_messages
from websockets.exceptions import InvalidHandshake

import nbws
import nbws.websocketstransport
from nbws.transport import Options
from nbws.websocketstransport import WebsocketsTransport

from recording import Recorder


def transport() -> WebsocketsTransport:
    url = "ws://127.0.0.1:9/"
    return WebsocketsTransport(Options(url, url, [], None, 10.0, 20.0, 20.0, None, None))


def test_a_verdict_that_replaces_the_exception_is_fatal(monkeypatch):
    """websockets' retry rule may return another exception than the one it got: that means
    "do not retry", never "retry forever"."""
    monkeypatch.setattr(nbws.websocketstransport, "websockets_verdict", lambda exc: RuntimeError("instead"))
    assert transport().failure(ConnectionRefusedError()).retryable is False
    monkeypatch.setattr(nbws.websocketstransport, "websockets_verdict", lambda exc: None)
    assert transport().failure(ConnectionRefusedError()).retryable is True


def test_not_a_websocket_server_is_not_retried():
    failure = transport().failure(InvalidHandshake("no upgrade"))
    assert failure.retryable is False
    assert "did not answer with a WebSocket handshake" in failure.message


FRAGMENTS = 5_000  # more than websockets 17.4's default limit of 4,096


def test_a_message_in_many_fragments_with_max_size_none(servers):
    """Autobahn 9.3/9.4: a message in thousands of small fragments. websockets >= 17.4 refuses
    more than MAX_FRAGMENTS whatever max_size says: nbws says so in one line naming the setting
    (not an internal error); websockets without that limit delivers the message."""

    async def fragmented(connection):
        await connection.send(["x" * 10 for _ in range(FRAGMENTS)])
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(fragmented), max_size=None)
    rec = Recorder(ws)
    limit = getattr(websockets_messages, "MAX_FRAGMENTS", None)
    if limit is not None and limit < FRAGMENTS:
        rec.wait_closed(20)  # websockets' closing handshake after a failure can take close_timeout
        assert rec.last("close").code == 1009
        message = rec.last("error").message
        assert "WEBSOCKETS_MAX_FRAGMENTS" in message and "internal error" not in message
        assert "\n" not in message
    else:
        assert ws.recv(timeout=10).data == "x" * 10 * FRAGMENTS
