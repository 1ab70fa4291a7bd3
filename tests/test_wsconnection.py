"""StoreConnection: messages straight from websockets' parser, as ``recv()`` would give them.

A raw TCP server writes the handshake's answer and hand-made frames in one write, so the
frames reach the client in the same packet as the handshake (the early-message path) and in
the orders a test needs (fragments, a ping between fragments, bad UTF-8 between good messages).
"""

from __future__ import annotations

from websockets.utils import accept_key

import nbws
import nbws.store

from recording import Recorder

TEXT, BINARY, CONT, CLOSE, PING = 0x1, 0x2, 0x0, 0x8, 0x9


def frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    """An unmasked server frame (payloads under 126 bytes)."""
    assert len(payload) < 126
    return bytes([(0x80 if fin else 0) | opcode, len(payload)]) + payload


CLOSE_1000 = frame(CLOSE, b"\x03\xe8")


def raw_server(servers, frames: bytes) -> str:
    """A server that answers the handshake and sends ``frames`` in the same write, then hangs
    up when the client's close frame comes."""

    async def on_connect(reader, writer):
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip().decode()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key).encode() + b"\r\n\r\n" + frames
        )
        await writer.drain()
        while True:  # the client's frames (masked), until its close frame: then hang up
            first, second = await reader.readexactly(2)
            length = second & 0x7F
            if length >= 126:
                length = int.from_bytes(await reader.readexactly(2 if length == 126 else 8), "big")
            await reader.readexactly(4 + length)
            if first & 0x0F == CLOSE:
                return

    return f"ws://127.0.0.1:{servers.tcp(on_connect)}/"


def closed_connection(servers, frames: bytes) -> tuple[nbws.WebSocket, Recorder]:
    """A connection to ``raw_server(frames)`` and its events, once it has closed."""
    ws = nbws.connect(raw_server(servers, frames))
    rec = Recorder(ws)
    rec.wait_closed()
    return ws, rec


def test_messages_in_the_handshake_packet_come_after_the_open_event(servers):
    _, rec = closed_connection(servers, frame(TEXT, b"first") + frame(BINARY, b"\x00\x01") + CLOSE_1000)
    assert rec.types == ["open", "message", "message", "close"]
    assert [event.data for event in rec.of("message")] == ["first", b"\x00\x01"]
    assert [event.seq for event in rec.of("message")] == [0, 1]
    assert rec.last("close").code == 1000


def test_fragments_are_joined_then_decoded_with_a_ping_between_them(servers):
    """A UTF-8 character split across two fragments decodes whole; a control frame may come
    between fragments (RFC 6455 5.4) and is answered, not mixed into the message."""
    e_acute = "é".encode()
    frames = (
        frame(TEXT, b"x" + e_acute[:1], fin=False)
        + frame(PING, b"between")
        + frame(CONT, e_acute[1:], fin=False)
        + frame(CONT, b"y")
        + frame(BINARY, b"ab", fin=False)
        + frame(CONT, b"c")
        + frame(TEXT, b"whole")
        + CLOSE_1000
    )
    ws, rec = closed_connection(servers, frames)
    assert [event.data for event in rec.of("message")] == ["xéy", b"abc", "whole"]
    assert ws.stats["received"] == 3


def test_invalid_utf8_fails_the_connection_and_nothing_after_it_is_delivered(servers):
    """As websockets' recv(): 1007, the message before kept, the ones after it dropped."""
    frames = frame(TEXT, b'{"ok": 1}') + frame(TEXT, b"\xff\xfe") + frame(TEXT, b'{"after": 2}')
    ws, rec = closed_connection(servers, frames)
    assert rec.types == ["open", "message", "error", "close"]
    assert "not valid UTF-8" in rec.last("error").message
    assert rec.last("close").code == 1007
    assert list(ws.frame.columns) == ["ok"]


def test_a_failing_store_ends_the_connection_and_says_so(servers, monkeypatch, capfd):
    """A bug of ours while storing a message is never silent: the traceback is printed, the
    connection ends with an error event naming it, and what was stored before stays."""
    append = nbws.store.MessageStore.append

    def append_failing_on_the_second(self, data, time_ns):
        if self.received == 1:
            raise RuntimeError("store bug")
        append(self, data, time_ns)

    monkeypatch.setattr(nbws.store.MessageStore, "append", append_failing_on_the_second)
    frames = frame(TEXT, b'{"n": 1}') + frame(TEXT, b'{"n": 2}') + frame(TEXT, b'{"n": 3}')
    ws, rec = closed_connection(servers, frames)
    assert rec.types == ["open", "message", "error", "close"]
    assert "nbws internal error: RuntimeError('store bug')" in rec.last("error").message
    assert rec.last("close").code == 1006
    assert list(ws.frame["n"]) == [1]
    assert "RuntimeError: store bug" in capfd.readouterr().err
