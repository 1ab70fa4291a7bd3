"""nbws.demo: the demo server's routes."""

from __future__ import annotations

import base64
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

import nbws
import nbws.demo


def test_echo_text_and_binary(demo):
    """/echo returns each message unchanged."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send("hi")
    ws.send(b"\x01\x02")
    assert [ws.recv(timeout=5).data for _ in range(2)] == ["hi", b"\x01\x02"]


def test_ticker_rate_count_symbols_and_nesting(demo):
    """/ticker sends count ticks with nested book fields, for the symbols asked, then closes."""
    ws = nbws.connect(demo.url + "/ticker?rate=0&count=50&symbols=AAA,BBB")
    closed = []
    ws.on("close")(closed.append)
    deadline = time.monotonic() + 10
    while not closed:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    frame = ws.frame
    assert len(frame) == 50
    assert set(frame["symbol"]) == {"AAA", "BBB"}
    assert list(frame["seq"]) == list(range(1, 51))
    assert {"type", "price", "book.bid", "book.ask", "ts"} <= set(frame.columns)
    assert (frame["book.bid"] < frame["book.ask"]).all()
    assert (closed[0].code, closed[0].reason) == (1000, "end of ticker")


def test_market_sends_ticks_only_after_a_subscription_and_only_for_its_symbols(demo):
    """/market answers each subscription and ticks for the symbols so far; mistakes get hints."""
    ws = nbws.connect(demo.url + "/market?rate=0&count=40").wait_open(5)
    ws.send("hello")
    error = ws.recv(timeout=5).json()
    assert error["type"] == "error" and '"op": "subscribe"' in error["message"]
    assert ws.stats["received"] == 1  # nothing ticks before a subscription
    ws.send_json({"op": "subscribe", "symbols": ["AAA", "BBB"]})
    assert ws.recv(timeout=5).json() == {"type": "subscribed", "symbols": ["AAA", "BBB"]}
    ws.wait_closed(10)
    ticks = ws.frame[ws.frame["type"] == "tick"]
    assert list(ticks["seq"]) == list(range(1, 41))
    assert set(ticks["symbol"]) == {"AAA", "BBB"}
    assert ws.close_event.reason == "end of market"


def test_ticker_paces_at_its_rate(demo):
    """At rate=20, tick 21 comes no sooner than a second after tick 1."""
    ws = nbws.connect(demo.url + "/ticker?rate=20&count=21").wait_open(5)
    ws.wait_closed(10)
    times = [m.received_at for m in ws.messages]
    assert len(times) == 21
    assert (times[-1] - times[0]).total_seconds() >= 0.9


def test_book_sends_order_book_diffs_with_decimal_strings(demo):
    """/book sends count diffs with `levels` [price, size] string pairs a side, then closes."""
    ws = nbws.connect(demo.url + "/book?rate=0&count=30&levels=5")
    ws.wait_closed(10)
    assert ws.close_event.reason == "end of book"
    frame = ws.frame
    assert len(frame) == 30 and list(frame.columns) == ["e", "E", "s", "U", "u", "b", "a"]
    assert (frame["e"] == "depthUpdate").all() and (frame["u"] - frame["U"] == 1).all()
    bids, asks = frame["b"].iloc[0], frame["a"].iloc[0]
    assert len(bids) == len(asks) == 5 and all(isinstance(x, str) for pair in bids for x in pair)
    assert float(bids[0][0]) < float(asks[0][0])
    assert len(ws.messages[0].data) > 300


def test_chat_broadcasts_to_everyone(demo):
    """/chat sends each message to all clients, the sender too."""
    alice = nbws.connect(demo.url + "/chat").wait_open(5)
    alice.send("alice is here")  # her own copy back means the room has her
    assert alice.recv(timeout=5).data == "alice is here"
    bob = nbws.connect(demo.url + "/chat").wait_open(5)
    bob.send("bob is here")
    assert bob.recv(timeout=5).data == "bob is here"
    assert alice.recv(timeout=5).data == "bob is here"
    alice.send(json.dumps({"from": "alice", "text": "hi"}))
    assert bob.recv(timeout=5).json() == {"from": "alice", "text": "hi"}
    assert alice.recv(timeout=5).json()["from"] == "alice"


def test_private_needs_the_demo_token(demo):
    """/private answers 401 without the header and echoes with it."""
    with pytest.raises(nbws.ConnectError, match="HTTP 401"):
        nbws.connect(demo.url + "/private").wait_open(5)
    ws = nbws.connect(
        demo.url + "/private", headers={"Authorization": f"Bearer {nbws.demo.DEMO_TOKEN}"}
    ).wait_open(5)
    ws.send("secret")
    assert ws.recv(timeout=5).data == "secret"


def test_unknown_route_is_404(demo):
    """An unknown path gets HTTP 404."""
    with pytest.raises(nbws.ConnectError, match="HTTP 404"):
        nbws.connect(demo.url + "/nope").wait_open(5)


def test_serve_context_manager_and_loopback_default():
    """serve() yields a ws://127.0.0.1 URL and stops the server afterwards."""
    with nbws.demo.serve() as url:
        assert url.startswith("ws://127.0.0.1:")
        ws = nbws.connect(url + "/echo").wait_open(5)
        ws.send("x")
        assert ws.recv(timeout=5).data == "x"
        ws.close()
    with pytest.raises(nbws.ConnectError, match="refused"):
        nbws.connect(url + "/echo").wait_open(5)


def test_ticker_over_its_rate_sends_every_tick_in_order(demo):
    """A rate above what the server can send still gives exactly count ticks, in order, then 1000."""
    ws = nbws.connect(demo.url + "/ticker?rate=100000&count=3000")
    closed = threading.Event()
    codes = []
    ws.add_event_listener("close", lambda event: (codes.append(event.code), closed.set()))
    assert closed.wait(10), f"the ticker did not end: {ws.stats['received']} of 3000 ticks"
    assert [json.loads(m.data)["seq"] for m in ws.messages] == list(range(1, 3001))
    assert codes == [1000]


def test_ticker_backlog_does_not_starve_other_clients():
    """While /ticker streams a backlog (rate above what it can send), a new client opens and talks."""
    server = nbws.demo.start()
    try:
        flood = nbws.connect(server.url + "/ticker?rate=100000&count=200000").wait_open(5)
        flood.wait_for_messages(1000, timeout=10)
        other = nbws.connect(server.url + "/echo").wait_open(timeout=5)
        other.send("still here")
        assert other.recv(timeout=5).data == "still here"
        assert flood.ready_state == nbws.OPEN, "the backlog was over before the test could tell"
    finally:
        nbws.close_all()
        server.close()


def _stalled_chat_client(url: str) -> socket.socket:
    """A raw /chat client: handshake, one hello, then it never reads again (tiny receive buffer)."""
    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # before connect: a small window
    sock.settimeout(5)
    sock.connect((parts.hostname, parts.port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        f"GET /chat HTTP/1.1\r\nHost: {parts.netloc}\r\nUpgrade: websocket\r\n"
        f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response and len(response) < 4096:
        chunk = sock.recv(1)  # one byte at a time: read the response, not the frames after it
        assert chunk, f"the server closed during the handshake: {response!r}"
        response += chunk
    assert response.startswith(b"HTTP/1.1 101"), response
    payload, mask = b"stalled: hello", os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    sock.sendall(bytes([0x81, 0x80 | len(payload)]) + mask + masked)  # a masked text frame
    return sock


def _recv_until(ws: nbws.WebSocket, text: str, limit: int, timeout: float) -> None:
    """Read ``ws`` until the message ``text`` arrives (at most ``limit`` messages, ``timeout`` s)."""
    deadline = time.monotonic() + timeout
    for _ in range(limit):
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"{text!r} did not reach {ws.url} within {timeout}s"
        if ws.recv(timeout=remaining).data == text:
            return
    raise AssertionError(f"{text!r} not among {limit} messages to {ws.url}")


@pytest.fixture
def stalled_room() -> Iterator[tuple[nbws.WebSocket, nbws.WebSocket, socket.socket]]:
    """A /chat room on a server of its own: alice, bob and a raw client that stopped reading."""
    server = nbws.demo.start()
    stalled = None
    try:
        alice = nbws.connect(server.url + "/chat").wait_open(5)
        alice.send("alice: hello")
        _recv_until(alice, "alice: hello", 1, 5)  # its own echo: alice is in the room
        bob = nbws.connect(server.url + "/chat").wait_open(5)
        bob.send("bob: hello")
        _recv_until(bob, "bob: hello", 1, 5)
        stalled = _stalled_chat_client(server.url)
        _recv_until(alice, "stalled: hello", 3, 5)  # the stalled client is in the room too
        _recv_until(bob, "stalled: hello", 2, 5)
        yield alice, bob, stalled
    finally:
        if stalled is not None:
            stalled.close()
        nbws.close_all()
        server.close()


def _talk(alice: nbws.WebSocket, bob: nbws.WebSocket) -> None:
    """Alice sends 16 MiB (more than the kernel buffers a stalled reader), bob answers."""
    pad = "x" * 2**18
    for i in range(64):
        alice.send(f"alice: {i} {pad}")
    alice.send("alice: done")
    _recv_until(bob, "alice: done", 70, 15)
    bob.send("bob: done")
    _recv_until(alice, "bob: done", 70, 15)


def test_chat_client_that_never_reads_does_not_stall_the_room(stalled_room):
    """With a /chat client that stopped reading, two others still exchange messages."""
    alice, bob, _ = stalled_room
    _talk(alice, bob)


def test_chat_cuts_a_client_whose_backlog_passes_the_limit(stalled_room, monkeypatch):
    """A /chat client that stopped reading is cut once CHAT_BACKLOG_LIMIT bytes wait for it."""
    alice, bob, stalled = stalled_room
    monkeypatch.setattr(nbws.demo, "CHAT_BACKLOG_LIMIT", 2**20)
    _talk(alice, bob)
    # What was queued before the cut reaches the socket, then the end of the stream.
    received, deadline = 0, time.monotonic() + 15
    while time.monotonic() < deadline and received < 2**26:
        try:
            chunk = stalled.recv(2**20)
        except ConnectionResetError:
            break
        except TimeoutError:
            raise AssertionError(f"the stalled client was not cut ({received} bytes read)") from None
        if not chunk:
            break
        received += len(chunk)
    else:
        raise AssertionError(f"the stalled client was not cut ({received} bytes read)")
    assert received < 2**24, "the stalled client got all 16 MiB: it was never cut"
