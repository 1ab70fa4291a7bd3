"""The run loop around the state machine, against real servers: reconnect semantics, internal
errors, and a loop thread that dies."""

from __future__ import annotations

import asyncio
import queue
import threading

import pytest

import nbws
import nbws.loop
import nbws.store
from nbws import CLOSED, CONNECTING, OPEN

from recording import Recorder

SLOW_RETRY = {"reconnect": True, "reconnect_delay": (0.3, 0.3)}  # a wait between attempts to act in


def dropping_server(servers, received: queue.Queue):
    """Each connection: say hello with its number, note what the client sends; the first one is
    dropped (no close frame) once it said hello."""
    count = 0

    async def handler(connection):
        nonlocal count
        count += 1
        await connection.send(f"hello {count}")
        if count == 1:
            connection.transport.abort()
            return
        async for message in connection:
            received.put(message)

    return servers.websocket(handler)


def connect_noting_drops(url: str, **kwargs) -> tuple[nbws.WebSocket, threading.Event]:
    """A connection and an event set when it reports a drop it will reconnect from. (Made in a
    function of its own: the creating frame returns, so events are not held.)"""
    ws = nbws.connect(url, **kwargs)
    reconnecting = threading.Event()
    ws.add_event_listener("error", lambda e: "reconnecting in" in e.message and reconnecting.set())
    return ws, reconnecting


def test_between_attempts_wait_open_waits_for_the_next_open(servers):
    """reconnect=True, after a drop: the state is CONNECTING and wait_open() returns only once
    the connection is open again."""
    ws, reconnecting = connect_noting_drops(dropping_server(servers, queue.Queue()), **SLOW_RETRY)
    assert reconnecting.wait(5)
    assert ws.ready_state == CONNECTING
    ws.wait_open(5)
    assert ws.ready_state == OPEN
    assert ws.stats["reconnects"] == 1


def test_between_attempts_send_waits_and_the_message_arrives(servers):
    """reconnect=True, after a drop: send() waits for the reopen and the server gets the message."""
    received = queue.Queue()
    ws, reconnecting = connect_noting_drops(dropping_server(servers, received), **SLOW_RETRY)
    assert reconnecting.wait(5)
    ws.send("after the drop")
    assert received.get(timeout=5) == "after the drop"


def test_send_while_still_reconnecting_says_so(servers):
    """A server that is gone: send() waits open_timeout, then a TimeoutError that says it is
    still reconnecting and nothing was sent."""
    url = dropping_server(servers, queue.Queue())
    ws, reconnecting = connect_noting_drops(url, open_timeout=0.5, reconnect=True, reconnect_delay=(30, 30))
    assert reconnecting.wait(5)
    with pytest.raises(TimeoutError, match=r"still reconnecting .*nothing was sent"):
        ws.send("lost?")
    ws.close()
    assert ws.ready_state == CLOSED


def test_close_between_attempts_wins(servers):
    """close() while waiting to reconnect: CLOSED at once, and no further attempt is made."""
    attempts = []

    def count(connection, request):
        attempts.append(1)
        return connection.respond(503, "busy\n")

    ws = nbws.connect(servers.websocket(lambda c: None, process_request=count) + "/", **SLOW_RETRY)
    rec = Recorder(ws)
    with pytest.raises(nbws.ConnectError, match="still retrying"):
        ws.wait_open(5)  # the first attempt failed; the next is 0.3 s away
    ws.close()
    assert ws.ready_state == CLOSED  # at once: close() does not wait for the retry
    rec.wait_closed()
    assert rec.last("close").code == 1006
    assert ws.stats["reconnecting"] is False
    # That no attempt follows is the machine's CancelRetry (tests/test_state.py).


def test_user_close_while_connecting_prints_nothing(servers, capfd):
    """close() during the handshake is the user's own doing: error + close events, no print."""
    port = servers.silent()
    ws = nbws.connect(f"ws://127.0.0.1:{port}/")
    ws.close()
    assert ws.wait_closed(5).code == 1006
    assert "before the connection was established" not in capfd.readouterr().err


def test_internal_error_in_the_reconnect_loop_is_shown_and_aborts(servers, monkeypatch, capfd):
    """A bug of nbws's while a reconnecting connection receives: traceback printed, the socket
    aborted, error + close 1006, and no retry (it would fail the same way)."""
    ended = threading.Event()

    async def stream(connection):
        try:
            await connection.send("first")
            await connection.wait_closed()
        finally:
            ended.set()

    def broken_append(self, data, time_ns):
        raise RuntimeError("bug in the store")

    monkeypatch.setattr(nbws.store.MessageStore, "append", broken_append)  # a bug, made to order
    ws = nbws.connect(servers.websocket(stream), reconnect=True, reconnect_delay=(0.05, 0.1))
    rec = Recorder(ws)
    rec.wait_closed()
    assert rec.types == ["open", "error", "close"]
    assert "nbws internal error" in rec.last("error").message
    assert rec.last("close").code == 1006
    assert ended.wait(5)  # the server saw the socket go
    err = capfd.readouterr().err
    assert "Traceback" in err and "bug in the store" in err
    assert ws.stats["reconnects"] == 0 and ws.stats["reconnecting"] is False


def test_a_dead_loop_thread_is_reported_on_every_connection(demo, capfd):
    """If the loop thread dies anyway, no connection claims OPEN: each gets error + close 1006,
    the death is printed, and a new connection starts a new loop thread."""
    streams = [nbws.connect(demo.url + "/ticker?rate=50").wait_open(5) for _ in range(2)]
    recorders = [Recorder(ws) for ws in streams]
    old_thread = next(t for t in threading.enumerate() if t.name == "nbws-loop")

    def die():
        raise SystemExit("something called sys.exit on the loop thread")

    nbws.loop.call_soon(die)
    for ws, rec in zip(streams, recorders):
        rec.wait_closed()
        assert rec.types[-2:] == ["error", "close"]
        assert "loop thread died" in rec.last("error").message
        assert rec.last("close").code == 1006 and ws.ready_state == CLOSED
    old_thread.join(5)
    assert not old_thread.is_alive()
    assert "loop thread died" in capfd.readouterr().err
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send("again")
    assert ws.recv(timeout=5).data == "again"


@pytest.mark.parametrize("raise_", [SystemExit, KeyboardInterrupt, asyncio.CancelledError])
def test_a_listener_that_raises_base_exceptions_does_not_stop_the_loop(demo, raise_, capfd):
    """sys.exit() or KeyboardInterrupt in a listener is reported and counted; this connection
    and every other one keep receiving."""
    other = nbws.connect(demo.url + "/ticker?rate=200").wait_open(5)
    ws = nbws.connect(demo.url + "/ticker?rate=200")
    errors = []
    ws.add_event_listener("error", errors.append)

    def hostile(event):
        raise raise_("from a listener")

    ws.add_event_listener("message", hostile)
    ws.wait_for_messages(5, timeout=5)  # the hostile listener has run five times
    ws.wait_for_messages(5, timeout=5)  # and the stream went on
    other.wait_for_messages(5, timeout=5)
    other.wait_for_messages(5, timeout=5)  # five more since, on the other connection
    assert ws.ready_state == OPEN and other.ready_state == OPEN
    assert ws.stats["listener_errors"] >= 5
    assert isinstance(errors[0].error, raise_)
    assert raise_.__name__ in capfd.readouterr().err


def test_an_event_loop_callback_exception_is_not_fatal(demo):
    """An ordinary exception in a loop callback goes to asyncio's handler; connections live on."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    nbws.loop.call_soon(lambda: 1 / 0)
    ws.send("alive")
    assert ws.recv(timeout=5).data == "alive"
