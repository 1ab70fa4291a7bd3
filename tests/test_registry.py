"""The registry: names belong to the newest connection; closing many, and at exit, is bounded."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from websockets.utils import accept_key

import nbws
from nbws import CLOSED, OPEN
from nbws.registry import registry


def test_a_name_belongs_to_the_newest_connection(demo):
    """Re-running connect(name="feed"): the older one closes; reconnecting the older one (its
    panel's Reconnect button) is refused and the newer keeps its name and stays open."""
    old = nbws.connect(demo.url + "/echo", name="feed").wait_open(5)
    new = nbws.connect(demo.url + "/echo", name="feed").wait_open(5)
    assert old.ready_state == CLOSED
    with pytest.raises(nbws.ConnectionClosedError, match="newer connection"):
        old.reconnect()
    assert new.ready_state == OPEN and old.ready_state == CLOSED
    assert nbws.connections()["feed"] is new
    old.close()  # idempotent, and never touches the newer one
    assert new.ready_state == OPEN


def test_reconnect_reclaims_a_free_name(demo):
    """A closed connection whose name nobody took reopens under it."""
    ws = nbws.connect(demo.url + "/echo", name="mine").wait_open(5)
    ws.close()
    assert "mine" not in nbws.connections()
    ws.reconnect().wait_open(5)
    assert nbws.connections()["mine"] is ws


def test_close_all_closes_together_and_is_bounded(servers):
    """Connections to a peer that never answers the close: close_all() does not take one close
    timeout per connection (they close together, then the rest are dropped)."""
    port = _deaf_server(servers)
    conns = [nbws.connect(f"ws://127.0.0.1:{port}/").wait_open(5) for _ in range(5)]
    registry.close_all(timeout=0.5)
    assert all(ws.ready_state == CLOSED for ws in conns)
    assert all(ws.close_event.code == 1006 for ws in conns)


EXIT_SCRIPT = """
import sys, time
import nbws
conns = [nbws.connect(f"ws://127.0.0.1:{sys.argv[1]}/").wait_open(5) for _ in range(5)]
print("open", len(conns), time.monotonic(), flush=True)
"""


def test_exit_with_five_connections_to_a_deaf_peer_is_quick(servers):
    """Five connections to a peer that never answers the close frame: the interpreter exits
    within a few seconds (not 5 x 10 s), with nothing printed."""
    port = _deaf_server(servers)
    run = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(port)], capture_output=True, text=True, timeout=40
    )
    assert run.returncode == 0, run.stderr
    assert run.stderr == ""
    word, count, last_statement = run.stdout.split()
    assert (word, count) == ("open", "5")
    # CLOCK_MONOTONIC is system-wide: from the script's last statement to the end of its exit
    # handlers. A bound on a hang (it was ~50 s), not a speed target.
    assert time.monotonic() - float(last_statement) < 8


def _deaf_server(servers) -> int:
    """A WebSocket server that completes the handshake, then never answers anything (not even
    the close frame): its port."""

    async def on_connect(reader, writer):
        request = await reader.readuntil(b"\r\n\r\n")
        key = next(
            line.split(b":", 1)[1].strip()
            for line in request.split(b"\r\n")
            if line.lower().startswith(b"sec-websocket-key:")
        )
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept_key(key.decode()).encode() + b"\r\n\r\n"
        )
        await writer.drain()
        while await reader.read(65536):  # read and ignore everything, until the client hangs up
            pass
        writer.close()

    return servers.tcp(on_connect)
