"""nbws.demo: the demo server's routes."""

from __future__ import annotations

import json
import time

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


def test_ticker_paces_at_its_rate(demo):
    """At rate=20, about 20 ticks arrive in a second."""
    ws = nbws.connect(demo.url + "/ticker?rate=20&count=100").wait_open(5)
    time.sleep(1.0)
    assert 10 <= ws.stats["received"] <= 30


def test_chat_broadcasts_to_everyone(demo):
    """/chat sends each message to all clients, the sender too."""
    alice = nbws.connect(demo.url + "/chat").wait_open(5)
    bob = nbws.connect(demo.url + "/chat").wait_open(5)
    time.sleep(0.05)
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
