"""nbws.client against the reference: undici's WHATWG WebSocket (Node.js 22's), event by event.

Each scenario runs twice against the same server, once in Node with undici and once with nbws,
and the two event logs (type, readyState when fired, close code/reason/wasClean, data) must be
equal.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
from pathlib import Path

import pytest

import nbws

pytestmark = pytest.mark.usefixtures("transport")  # every test, once per transport

REFERENCE = Path(__file__).parent.parent / "tools" / "whatwg-reference"


def node_events(scenario: dict) -> list[dict]:
    node = shutil.which("node")
    assert node, "Node.js >= 20.18 is needed for the reference client (scripts/test installs it)"
    assert (REFERENCE / "node_modules" / "undici").exists(), "run: npm ci --prefix tools/whatwg-reference"
    result = subprocess.run(
        [node, str(REFERENCE / "reference.mjs"), json.dumps(scenario)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return json.loads(result.stdout)


def nbws_events(scenario: dict) -> list[dict]:
    events: list[dict] = []
    done = threading.Event()
    ws = nbws.WebSocket(scenario["url"])
    messages = 0

    def record(type, **extra):
        events.append({"type": type, "readyState": int(ws.ready_state), **extra})

    @ws.on("open")
    def on_open(event):
        record("open")
        if "sendOnOpen" in scenario:
            ws.send(scenario["sendOnOpen"])

    @ws.on("message")
    def on_message(event):
        nonlocal messages
        messages += 1
        record("message", data=str(event.data))
        if scenario.get("closeAfterMessages") == messages:
            ws.close(*scenario.get("closeArgs", []))

    ws.on("error")(lambda event: record("error"))

    @ws.on("close")
    def on_close(event):
        record("close", code=event.code, reason=event.reason, wasClean=event.was_clean)
        done.set()

    if scenario.get("closeAt") == "start":
        ws.close()
    assert done.wait(10), events
    return events


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def same_events(scenario: dict) -> list[dict]:
    reference = node_events(scenario)
    ours = nbws_events(scenario)
    assert ours == reference
    return ours


def test_client_closes_after_echo(demo):
    """Client sends on open and closes with 1000 after the echo."""
    events = same_events(
        {"url": demo.url + "/echo", "sendOnOpen": "hi", "closeAfterMessages": 1, "closeArgs": [1000]}
    )
    assert events[-1]["code"] == 1000


def test_bare_close_is_1000_by_design_where_browsers_send_no_code(demo):
    """close() without arguments: undici sends no status (1005); nbws sends 1000 (DESIGN.md)."""
    scenario = {"url": demo.url + "/echo", "sendOnOpen": "hi", "closeAfterMessages": 1}
    reference, ours = node_events(scenario), nbws_events(scenario)
    assert reference[-1]["code"] == 1005
    assert ours[-1]["code"] == 1000
    assert ours[:-1] == reference[:-1]
    assert {**ours[-1], "code": 1005} == reference[-1]


def test_client_closes_with_code_and_reason(demo):
    """close(4000, reason) from the client: the server echoes the code and reason."""
    same_events(
        {
            "url": demo.url + "/echo",
            "sendOnOpen": "x",
            "closeAfterMessages": 1,
            "closeArgs": [4000, "done here"],
        }
    )


def test_server_closes_with_code_and_reason(demo):
    """The server closes with 4001 and a reason after two messages."""
    events = same_events({"url": demo.url + "/close?code=4001&reason=bye&after=2"})
    assert [e["type"] for e in events] == ["open", "message", "message", "close"]


def test_server_closes_normally(demo):
    """The server sends three messages and closes with 1000."""
    same_events({"url": demo.url + "/close?code=1000&after=3"})


def test_abrupt_drop(demo):
    """The server cuts TCP without a close frame: error, then close 1006."""
    events = same_events({"url": demo.url + "/drop?after=2"})
    assert [e["type"] for e in events][-2:] == ["error", "close"]


def test_close_frame_without_status(servers):
    """An empty close frame: 1005, clean."""

    async def handler(connection):
        async with connection.send_context():
            connection.protocol.send_close()
        await connection.wait_closed()

    events = same_events({"url": servers.websocket(handler)})
    assert events[-1]["code"] == 1005


def test_refused():
    """Nothing listens: error, then close 1006."""
    same_events({"url": f"ws://127.0.0.1:{free_port()}/"})


def test_http_404_on_upgrade(demo):
    """The server answers the upgrade with 404: error, then close 1006."""
    same_events({"url": demo.url + "/no-such-route"})


def test_close_while_connecting(servers):
    """close() before the handshake finishes: error, then close 1006."""

    port = servers.silent()
    same_events({"url": f"ws://127.0.0.1:{port}/", "closeAt": "start"})


@pytest.fixture(autouse=True, scope="module")
def _reference_installed():
    """Fail clearly (never skip) when the reference client is missing."""
    node_events  # noqa: B018 - referenced so the helper's message is the one users see
    yield
