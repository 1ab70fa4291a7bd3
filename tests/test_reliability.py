"""Reliability: every bad input and fault, driven as a user would, with the outcome asserted.

This is the test behind the docs' "Reliability" table. For each case the outcome is one of: a
clear one-line error that says what to do, nothing already received is lost, and the process
keeps working (a new connection afterwards still opens and echoes).

Tests only talk to 127.0.0.1/localhost; a DNS failure is simulated (a test may not query a
resolver), by nbws's loop answering NXDOMAIN for one name under the reserved ``.invalid``
TLD. Every server that sends traffic is bounded
in count, and every wait is bounded in time.
"""

from __future__ import annotations

import _thread
import itertools
import json
import os
import signal
import socket
import ssl
import threading
import time

import pytest
import trustme
from websockets.asyncio.server import serve as ws_serve

import nbws
from nbws import CLOSED, OPEN

from kernel import Kernel
from recording import Recorder, wait_for

pytestmark = pytest.mark.usefixtures("transport")  # every test, once per transport

# -- helpers ---------------------------------------------------------------------------------


def assert_one_line(message: str) -> None:
    """A message a user can read at a glance: one line, no stray whitespace, not cut off."""
    assert message, "empty message"
    assert "\n" not in message, f"not one line: {message!r}"
    assert message == message.strip(), f"stray whitespace: {message!r}"
    assert not message.endswith(":"), f"message ends without saying why: {message!r}"
    assert len(message) < 400, f"too long for one line: {message!r}"


def assert_echo_works(demo) -> None:
    """The process keeps working: a new connection to the demo /echo opens and echoes."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send("still working")
    assert ws.recv(timeout=5).data == "still working"
    ws.close()
    assert ws.ready_state == CLOSED


def simulate_nxdomain(monkeypatch, host: str) -> None:
    """nbws's loop answers "no such host" for ``host`` (and resolves other names as usual)."""
    loop = nbws.loop.get_loop()
    real = loop.getaddrinfo

    async def getaddrinfo(name, *args, **kwargs):
        if name == host:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return await real(name, *args, **kwargs)

    monkeypatch.setattr(loop, "getaddrinfo", getaddrinfo)


def refused_port() -> int:
    """A port on 127.0.0.1 nobody listens on: bound, then closed."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def abort_all(servers, connections: list) -> None:
    """Cut server-side connections (on the server loop) so a stalled test tears down fast."""

    def abort():
        for connection in connections:
            connection.transport.abort()

    servers.loop.call_soon_threadsafe(abort)


# -- 1. bad URLs: ValueError at construction ---------------------------------------------------


@pytest.mark.parametrize(
    "url, words",
    [
        ("http://127.0.0.1:8765/echo", "did you mean ws://127.0.0.1:8765/echo"),
        ("https://127.0.0.1:8765/feed?symbols=AAPL", "did you mean wss://127.0.0.1:8765/feed?symbols=AAPL"),
        ("ftp://127.0.0.1/", "must be ws:// or wss://"),
        ("127.0.0.1:8765/echo", "must be ws:// or wss://"),
        ("ws:///path", "no host"),
        ("ws://127.0.0.1:99999/", "port must be a number 1-65535"),
        ("ws://127.0.0.1:abc/", "port must be a number 1-65535"),
        ("ws://127.0.0.1:-1/", "port must be a number 1-65535"),
        ("ws://127.0.0.1:0/", "port must be a number 1-65535"),
        ("ws://[::1/", "ws://[::1/"),
        ("ws://127.0.0.1/echo#top", "#fragment"),
    ],
    ids=[
        "http",
        "https-with-query",
        "ftp",
        "no-scheme",
        "no-host",
        "port-99999",
        "port-abc",
        "port-negative",
        "port-0",
        "broken-ipv6",
        "fragment",
    ],
)
def test_bad_url_raises_value_error_at_construction(url, words):
    """A bad URL is refused before any I/O with one line naming the URL and what to fix."""
    with pytest.raises(ValueError) as info:
        nbws.WebSocket(url)
    message = str(info.value)
    assert_one_line(message)
    assert words in message
    assert nbws.connections() == {}


def test_url_that_is_not_a_string_raises_type_error():
    with pytest.raises(TypeError, match="must be a str like 'ws://host:port/path'"):
        nbws.WebSocket(b"ws://127.0.0.1/")


# -- 2. the handshake fails: ConnectError, error + close 1006, the process keeps working --------


async def _plain_http(reader, writer):
    """A web server that is not a WebSocket server: 200 OK with an HTML body."""
    await reader.readuntil(b"\r\n\r\n")
    body = b"<html><body>hello</body></html>"
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s"
        % (len(body), body)
    )
    await writer.drain()
    writer.close()


def _forbid(connection, request):
    return connection.respond(403, "go away\n")


def _connect_failure_case(kind, servers):
    """(url, connect kwargs, words the message must contain, status) for each failure kind."""
    if kind == "unresolvable":
        return "ws://nbws-test.invalid/", {}, "cannot resolve host 'nbws-test.invalid'", None
    if kind == "refused":
        port = refused_port()
        return f"ws://127.0.0.1:{port}/", {}, f"refused by 127.0.0.1:{port}; is the server running?", None
    if kind == "not-websocket":
        return f"ws://127.0.0.1:{servers.tcp(_plain_http)}/", {}, "HTTP 200", 200
    if kind == "http-403":
        url = servers.websocket(lambda c: None, process_request=_forbid)
        return url + "/", {}, "refused the WebSocket upgrade with HTTP 403 Forbidden", 403
    if kind == "slow-handshake":
        port = servers.silent()
        return f"ws://127.0.0.1:{port}/", {"open_timeout": 0.5}, "within open_timeout=0.5s", None
    raise AssertionError(kind)


@pytest.mark.parametrize("kind", ["unresolvable", "refused", "not-websocket", "http-403", "slow-handshake"])
def test_handshake_failure_is_one_connect_error_and_the_process_keeps_working(
    kind, servers, demo, monkeypatch
):
    """wait_open raises ConnectError (one line); error then close 1006; a new connection works."""
    url, kwargs, words, status = _connect_failure_case(kind, servers)
    if kind == "unresolvable":
        simulate_nxdomain(monkeypatch, "nbws-test.invalid")
    ws = nbws.connect(url, **kwargs)
    rec = Recorder(ws)
    with pytest.raises(nbws.ConnectError) as info:
        ws.wait_open(5)
    message = str(info.value)
    assert_one_line(message)
    assert words in message
    assert info.value.url == url
    assert info.value.status == status
    rec.wait_closed()
    assert rec.types == ["error", "close"]
    assert rec.of("error")[0].message == message
    close = rec.of("close")[0]
    assert (close.code, close.was_clean) == (1006, False)
    assert ws.ready_state == CLOSED
    assert nbws.connections() == {}
    with pytest.raises(nbws.ConnectError):  # send after a failed open says why, too
        ws.send("lost?")
    assert_echo_works(demo)


# -- 3. values that cannot be sent: TypeError, the connection stays open ----------------------


def _circular():
    items: list = []
    items.append(items)
    return items


@pytest.mark.parametrize(
    "call, value, words",
    [
        ("send_json", object(), "cannot send this value as JSON"),
        ("send_json", {"when": object()}, "cannot send this value as JSON"),
        ("send_json", {1, 2}, "cannot send this value as JSON"),
        ("send_json", _circular(), "cannot send this value as JSON"),
        ("send", 123, "use send_json() for objects"),
        ("send", None, "use send_json() for objects"),
        ("send", {"a": 1}, "use send_json() for objects"),
        ("send", ["a"], "use send_json() for objects"),
    ],
    ids=["object", "nested-object", "set", "circular", "int", "None", "dict", "list"],
)
def test_unsendable_value_raises_type_error_and_the_connection_stays_open(demo, call, value, words):
    """Nothing is sent, the error is one line, and the next message goes through."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    with pytest.raises(TypeError) as info:
        getattr(ws, call)(value)
    assert_one_line(str(info.value))
    assert words in str(info.value)
    assert ws.ready_state == OPEN
    assert ws.stats["sent"] == 0
    ws.send_json({"next": 1})
    assert ws.recv(timeout=5).json() == {"next": 1}


def test_send_json_nan_and_wide_integers(demo):
    """NaN goes as null (documented). An integer wider than 64 bits, which nbws reads fine, is
    refused on sending (orjson) with a TypeError; the connection stays open either way."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send_json({"a": float("nan"), "b": float("inf")})
    assert ws.recv(timeout=5).data == '{"a":null,"b":null}'
    with pytest.raises(TypeError, match="cannot send this value as JSON") as info:
        ws.send_json({"big": 2**70})
    assert_one_line(str(info.value))
    assert ws.ready_state == OPEN
    ws.send('{"big": 1180591620717411303424}')  # as text it goes, and is read back
    assert ws.recv(timeout=5).json() == {"big": 2**70}


# -- 4. what the server sends: never lost, never fatal ---------------------------------------

HUGE = json.dumps({"blob": "x" * (2 * 2**20)})  # 2 MiB of JSON
MIXED: list[tuple[str | bytes, bool]] = [  # (payload, is it JSON?)
    ('{"type": "tick", "n": 1}', True),
    ("not json at all", False),
    (b"\x00\x01\xff binary", False),
    ("42", True),
    ("[1, 2, 3]", True),
    ('"just a string"', True),
    ("null", True),
    ("3.5", True),
    ('{"truncated": ', False),
    ("", False),
    (HUGE, True),
    ('{"x": NaN}', True),
    ('{"big": 1180591620717411303424}', True),
    (b"", False),
    ('{"type": "tick", "n": 2, "book": {"bid": 1.5}}', True),
]


def test_incoming_non_json_binary_huge_and_non_objects_are_all_kept(servers):
    """Mixed payloads: every one is in ws.messages, JSON ones are rows, the rest parse errors."""

    async def handler(connection):
        for payload, _ in MIXED:
            await connection.send(payload)
        async for message in connection:  # then echo
            await connection.send(message)

    ws = nbws.connect(servers.websocket(handler))
    rec = Recorder(ws)
    ws.wait_open(5)
    wait_for(lambda: ws.stats["received"] == len(MIXED), 10, "every message received")
    assert ws.ready_state == OPEN
    assert rec.types == ["open"] + ["message"] * len(MIXED)
    assert [m.data for m in ws.messages] == [payload for payload, _ in MIXED]
    json_count = sum(is_json for _, is_json in MIXED)
    assert ws.stats["parse_errors"] == len(MIXED) - json_count
    frame = ws.frame
    assert len(frame) == json_count
    assert frame["n"].dropna().tolist() == [1, 2]
    assert frame["blob"].dropna().str.len().tolist() == [2 * 2**20]
    assert frame["big"].dropna().tolist() == [2**70]
    assert frame["book.bid"].dropna().tolist() == [1.5]
    for event, (_, is_json) in zip(ws.messages, MIXED):
        if is_json:
            event.json()
        else:
            with pytest.raises(nbws.JSONDecodeError) as info:
                event.json()
            assert_one_line(str(info.value))
    assert ws.recv(timeout=5).data == MIXED[0][0]  # recv starts at the oldest unread
    ws.send("after the mix")
    wait_for(lambda: ws.messages[-1].data == "after the mix")
    assert ws.ready_state == OPEN


@pytest.mark.parametrize("depth", [1000, 1025, 5000])
def test_deeply_nested_json_does_not_kill_the_connection(servers, depth):
    """Nesting deeper than the parsers' limits (orjson: 1024; json: the recursion limit) is kept
    as a message (a row or a parse error); the stream goes on and the connection stays OPEN."""
    deep = "[" * depth + "]" * depth

    async def handler(connection):
        await connection.send(deep)
        await connection.send('{"after": 1}')
        async for message in connection:
            await connection.send(message)

    ws = nbws.connect(servers.websocket(handler))
    rec = Recorder(ws)
    ws.wait_open(5)
    wait_for(lambda: ws.stats["received"] == 2 or ws.ready_state == CLOSED, 5, "both messages")
    errors = [e.message for e in rec.of("error")]
    assert ws.ready_state == OPEN, f"connection ended: {errors} {rec.of('close')}"
    assert [m.data for m in ws.messages] == [deep, '{"after": 1}']
    assert len(ws.frame) + ws.stats["parse_errors"] == 2
    assert ws.frame["after"].dropna().tolist() == [1]
    try:
        ws.messages[0].json()
    except nbws.JSONDecodeError as exc:  # refusing is fine; crashing (RecursionError) is not
        assert_one_line(str(exc))
    ws.send("still open")
    wait_for(lambda: ws.messages[-1].data == "still open")


# -- 5. close codes and reasons out of range ----------------------------------------------------


@pytest.mark.parametrize(
    "code, reason, words",
    [
        (999, "", "close code must be 1000 or in 3000-4999, not 999"),
        (1001, "", "close code must be 1000 or in 3000-4999, not 1001"),
        (5000, "", "close code must be 1000 or in 3000-4999, not 5000"),
        (1000, "x" * 200, "close reason must be at most 123 bytes of UTF-8"),
    ],
    ids=["999", "1001", "5000", "long-reason"],
)
def test_bad_close_code_or_reason_raises_and_the_connection_stays_open(demo, code, reason, words):
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    with pytest.raises(ValueError) as info:
        ws.close(code, reason)
    assert str(info.value) == words
    assert_one_line(str(info.value))
    assert ws.ready_state == OPEN
    ws.send("after a bad close")
    assert ws.recv(timeout=5).data == "after a bad close"


# -- 6. using a closed connection ---------------------------------------------------------------


@pytest.mark.parametrize(
    "how, code",
    [("client-close", 1000), ("server-close", 4000), ("dropped", 1006)],
)
def test_send_after_close_says_to_open_a_new_connection(demo, how, code):
    """send/send_json after any kind of close raise ConnectionClosedError; messages are kept."""
    if how == "client-close":
        ws = nbws.connect(demo.url + "/echo").wait_open(5)
        ws.send("one")
        wait_for(lambda: ws.stats["received"] == 1)
        ws.close()
    else:
        path = "/close?code=4000&reason=bye&after=1" if how == "server-close" else "/drop?after=1"
        ws = nbws.connect(demo.url + path)
        ws.wait_closed(5)
    assert ws.ready_state == CLOSED
    for send, value in ((ws.send, "too late"), (ws.send_json, {"too": "late"})):
        with pytest.raises(nbws.ConnectionClosedError) as info:
            send(value)
        message = str(info.value)
        assert_one_line(message)
        assert f"code {code}" in message
        assert message.endswith("open a new one with nbws.connect()")
        assert info.value.code == code
    assert len(ws.messages) == 1  # what was received is kept, and still readable
    assert ws.recv(timeout=1).seq == 0
    with pytest.raises(nbws.ConnectionClosedError, match="open a new one"):
        ws.recv(timeout=1)
    assert ws.stats["sent"] == (1 if how == "client-close" else 0)
    assert_echo_works(demo)


# -- 7. interrupting a blocking recv() ----------------------------------------------------------


def _sigalrm_keyboard_interrupt(signum, frame):
    raise KeyboardInterrupt


@pytest.mark.parametrize("how", ["sigint", "setitimer", "interrupt_main"])
def test_interrupting_recv_raises_keyboard_interrupt_and_the_connection_keeps_working(demo, how):
    """An interrupt stops recv() promptly; afterwards recv gets the next message as usual.

    ``sigint``: a real SIGINT (what the kernel's interrupt sends on POSIX). ``setitimer``: a
    SIGALRM whose handler raises KeyboardInterrupt. ``interrupt_main``: ``_thread.interrupt_main()``,
    which only sets the flag (no syscall is interrupted; ipykernel on Windows interrupts this way).
    """
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    old = signal.getsignal(signal.SIGALRM)
    timer = None
    if how == "sigint":
        timer = threading.Timer(0.2, os.kill, args=(os.getpid(), signal.SIGINT))
    elif how == "interrupt_main":
        timer = threading.Timer(0.2, _thread.interrupt_main)
    else:
        signal.signal(signal.SIGALRM, _sigalrm_keyboard_interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.2)
    start = time.monotonic()
    try:
        if timer is not None:
            timer.start()
        with pytest.raises(KeyboardInterrupt):
            ws.recv(timeout=20)  # bounded: a pending interrupt flag alone would surface only at 20 s
        elapsed = time.monotonic() - start
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
        if timer is not None:
            timer.join()
    assert ws.ready_state == OPEN
    ws.send("after the interrupt")
    assert ws.recv(timeout=5).data == "after the interrupt"
    assert ws.stats["received"] == 1
    # A bound on a hang, not a speed: the interrupt comes at 0.2 s; unseen, it would wait 20 s.
    assert elapsed < 10, f"KeyboardInterrupt came {elapsed:.2f}s after the call (interrupt at 0.2s)"


def test_interrupting_recv_in_a_kernel(tmp_path, demo):
    """A real kernel interrupt during ws.recv(): KeyboardInterrupt, then the connection still works."""
    kernel = Kernel(tmp_path)
    try:
        kernel.run(f"import nbws\nws = nbws.connect({demo.url + '/echo'!r}).wait_open(5)")
        cell = kernel.submit("print('receiving', flush=True)\nws.recv(timeout=20)")
        kernel.wait_for_output(cell, "receiving")  # the cell is at ws.recv()
        kernel.manager.interrupt_kernel()
        kernel.wait([cell], timeout=10)
        assert kernel.reply(cell)["ename"] == "KeyboardInterrupt"
        out = kernel.run("ws.send('after'); print(ws.recv(timeout=5).data, ws.ready_state.name)")
        assert out.split() == ["after", "OPEN"]
    finally:
        kernel.shutdown()


# -- 8. TLS ---------------------------------------------------------------------------------


@pytest.fixture
def tls(servers):
    """A CA, a wss:// echo server on 127.0.0.1 with a cert for 127.0.0.1 and localhost."""
    ca = trustme.CA()
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(server_context)

    async def echo(connection):
        async for message in connection:
            await connection.send(message)

    port = int(servers.websocket(echo, ssl=server_context).rsplit(":", 1)[1])
    trusting = ssl.create_default_context()
    ca.configure_trust(trusting)
    return {"ca": ca, "port": port, "trusting": trusting, "echo": echo}


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost"])
def test_wss_with_a_context_that_trusts_the_ca_opens_and_echoes(tls, host):
    ws = nbws.connect(f"wss://{host}:{tls['port']}/", ssl=tls["trusting"]).wait_open(5)
    ws.send("over TLS")
    assert ws.recv(timeout=5).data == "over TLS"


@pytest.mark.parametrize("which", ["default-trust", "another-ca", "name-mismatch"])
def test_wss_certificate_not_verified_is_a_one_line_connect_error(tls, servers, demo, which):
    """Untrusted or wrong-name certificate: ConnectError saying verification failed and to pass ssl=."""
    port, kwargs = tls["port"], {}
    if which == "another-ca":
        other = ssl.create_default_context()
        trustme.CA().configure_trust(other)
        kwargs["ssl"] = other
    elif which == "name-mismatch":
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        tls["ca"].issue_cert("nbws-test.invalid").configure_cert(context)
        port = int(servers.websocket(tls["echo"], ssl=context).rsplit(":", 1)[1])
        kwargs["ssl"] = tls["trusting"]
    ws = nbws.connect(f"wss://127.0.0.1:{port}/", **kwargs)
    rec = Recorder(ws)
    with pytest.raises(nbws.ConnectError) as info:
        ws.wait_open(5)
    message = str(info.value)
    assert_one_line(message)
    assert f"TLS certificate of 127.0.0.1:{port} failed verification" in message
    assert "pass ssl= with an SSLContext that trusts it" in message
    assert isinstance(info.value.__cause__, ssl.SSLCertVerificationError)
    rec.wait_closed()
    assert rec.types == ["error", "close"]
    assert rec.of("close")[0].code == 1006
    assert_echo_works(demo)


def test_ssl_on_a_ws_url_is_a_value_error(tls):
    with pytest.raises(ValueError, match=r"^ssl= is only for wss:// URLs$"):
        nbws.connect(f"ws://127.0.0.1:{tls['port']}/", ssl=tls["trusting"])


def test_wss_to_a_plain_ws_server_says_the_tls_handshake_failed(tls, demo):
    """wss:// to a server without TLS: the message should say TLS failed, not be empty."""
    ws = nbws.connect(demo.url.replace("ws://", "wss://") + "/echo", ssl=tls["trusting"])
    with pytest.raises(nbws.ConnectError) as info:
        ws.wait_open(5)
    assert_one_line(str(info.value))
    assert "TLS" in str(info.value)


def test_ws_to_a_tls_server_is_a_one_line_connect_error(tls):
    """ws:// to a TLS-only server: no valid HTTP answer comes back."""
    ws = nbws.connect(f"ws://127.0.0.1:{tls['port']}/")
    with pytest.raises(nbws.ConnectError) as info:
        ws.wait_open(5)
    assert_one_line(str(info.value))
    assert "did not answer with a WebSocket handshake" in str(info.value)


# -- 9. faults while connected ------------------------------------------------------------------


def test_reconnect_after_a_drop_keeps_every_message(servers):
    """(a) 100 messages, then the TCP connection dies without a close frame; reconnect=True
    reopens, the 100 stay, and what the new connection sends arrives after them."""
    connections = []

    async def handler(connection):
        connections.append(connection)
        first = len(connections) == 1
        for i in range(100 if first else 5):
            await connection.send(json.dumps({"conn": len(connections), "i": i}))
        if first:
            await connection.recv()  # the client has all 100
            connection.transport.abort()
        else:
            await connection.wait_closed()

    ws = nbws.connect(servers.websocket(handler), reconnect=True)
    rec = Recorder(ws)
    ws.wait_open(5)
    assert ws.wait_for_messages(100, timeout=10) == 100
    ws.send("got them")
    wait_for(lambda: ws.stats["received"] == 105, 10, "105 messages over two connections")
    assert ws.ready_state == OPEN
    assert ws.stats["reconnects"] == 1
    assert len(connections) == 2
    data = [m.json() for m in ws.messages]
    assert data == [{"conn": 1, "i": i} for i in range(100)] + [{"conn": 2, "i": i} for i in range(5)]
    assert len(ws.frame) == 105
    assert [e.reconnect for e in rec.of("open")] == [False, True]
    errors = rec.of("error")
    assert len(errors) == 1
    assert_one_line(errors[0].message)
    assert "without a close frame" in errors[0].message
    assert rec.of("close") == []  # not finished: it reopened


def test_stalled_server_is_detected_by_keepalive(servers):
    """(b) The server stops reading (so never answers pings) but keeps the socket open. With
    ping_interval=0.5 the stall should be noticed within a few seconds: error, then close 1011
    (websockets' "keepalive ping timeout")."""
    connections = []

    async def stall(connection):
        connections.append(connection)
        await connection.send("before the stall")
        connection.transport.pause_reading()
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(stall, ping_interval=None), ping_interval=0.5, ping_timeout=0.5)
    rec = Recorder(ws)
    ws.wait_open(5)
    try:
        detected = rec.closed.wait(4)
    finally:
        abort_all(servers, connections)  # a stalled server never answers the closing handshake
        rec.wait_closed(5)
    assert detected, f"stall not detected within 4s (ping_interval=0.5); events: {rec.types}"
    assert [m.data for m in ws.messages] == ["before the stall"]
    assert rec.types[-2:] == ["error", "close"]
    assert_one_line(rec.of("error")[0].message)
    assert rec.of("close")[0].code == 1011


def test_server_closes_without_a_close_frame(servers, demo):
    """(c) transport.abort after 3 messages: error (one line) then close 1006; messages kept."""

    async def handler(connection):
        for i in range(3):
            await connection.send(json.dumps({"i": i}))
        await connection.recv()  # the client has all 3
        connection.transport.abort()

    url = servers.websocket(handler)
    ws = nbws.connect(url)
    rec = Recorder(ws)
    ws.wait_open(5)
    assert ws.wait_for_messages(3, timeout=5) == 3
    ws.send("got them")
    rec.wait_closed()
    assert rec.types == ["open", "message", "message", "message", "error", "close"]
    message = rec.of("error")[0].message
    assert_one_line(message)
    assert message == f"connection to {url} was lost without a close frame"
    close = rec.of("close")[0]
    assert (close.code, close.reason, close.was_clean) == (1006, "", False)
    assert [m.json()["i"] for m in ws.messages] == [0, 1, 2]
    assert len(ws.frame) == 3
    assert_echo_works(demo)


FAST = {"reconnect": True, "reconnect_delay": (0.05, 0.4)}  # short backoff, so tests stay quick


def test_flapping_server_backs_off_and_nothing_is_lost(servers):
    """(d) A server that accepts, sends 3 messages and drops, 5 times: every message is kept,
    each drop is reported, and the retries wait longer each time (jittered backoff: at least
    half the bound, which doubles from 0.05 s to the 0.4 s cap)."""
    flaps = 5
    connections: list[float] = []

    async def handler(connection):
        connections.append(time.monotonic())
        n = len(connections)
        if n > flaps:  # bounded: from the 6th connection on, stay open and send nothing
            await connection.wait_closed()
            return
        for i in range(3):
            await connection.send(json.dumps({"conn": n, "i": i}))
        await connection.recv()  # the client has all 3
        connection.transport.abort()

    ws = nbws.connect(servers.websocket(handler), **FAST)
    rec = Recorder(ws)

    @ws.on("message")
    def acknowledge(event):
        if event.json()["i"] == 2:
            ws.send("got them")

    ws.wait_open(5)
    wait_for(lambda: len(connections) == flaps + 1 and ws.ready_state == OPEN, 15, "the 6th connection")
    assert ws.stats["received"] == 3 * flaps
    assert ws.stats["reconnects"] == flaps
    assert [(m.json()["conn"], m.json()["i"]) for m in ws.messages] == [
        (n, i) for n in range(1, flaps + 1) for i in range(3)
    ]
    assert [e.reconnect for e in rec.of("open")] == [False] + [True] * flaps
    errors = rec.of("error")
    assert len(errors) == flaps
    for error in errors:
        assert_one_line(error.message)
        assert "lost without a close frame; reconnecting in" in error.message
    gaps = [later - earlier for earlier, later in itertools.pairwise(connections)]
    bounds = [0.05, 0.1, 0.2, 0.4, 0.4]
    assert all(gap >= bound / 2 for gap, bound in zip(gaps, bounds)), gaps  # paced, never a hot loop
    assert rec.of("close") == []
    assert len(connections) == flaps + 1  # no extra attempts
    ws.close()
    assert rec.of("close")[0].code == 1000


@pytest.mark.parametrize(
    "code, reconnects", [(1000, False), (4001, False), (1001, True), (1011, True), (1012, True)]
)
def test_server_close_code_decides_whether_reconnect_reopens(servers, code, reconnects):
    """(e) reconnect=True reopens after "going away" (1001) or "service restart" (1012), but a
    normal close (1000) or the application's own code (4001) ends it: the server is done."""
    connections = []

    async def handler(connection):
        connections.append(connection)
        if len(connections) == 1:
            await connection.send("first")
            await connection.close(code, "bye")
        else:  # bounded: later connections stay open
            await connection.send("second")
            await connection.wait_closed()

    ws = nbws.connect(servers.websocket(handler), **FAST)
    rec = Recorder(ws)
    ws.wait_open(5)
    if reconnects:
        wait_for(lambda: ws.stats["received"] == 2, 5, "a message from each connection")
        assert ws.ready_state == OPEN
        assert [m.data for m in ws.messages] == ["first", "second"]
        assert rec.types == ["open", "message", "error", "open", "message"]
        assert f"closed with {code} bye; reconnecting in" in rec.of("error")[0].message
        assert rec.of("open")[1].reconnect is True
    else:
        rec.wait_closed()
        assert [m.data for m in ws.messages] == ["first"]
        assert rec.types == ["open", "message", "close"]
        assert (rec.last("close").code, rec.last("close").reason) == (code, "bye")
        assert len(connections) == 1


def test_a_server_that_keeps_restarting_is_reconnected_at_a_pace(servers):
    """A server that closes every connection with 1012 ("service restart") is reconnected to,
    but each time after a longer delay, never in a tight loop (the server caps it at 30)."""
    cap = 30
    connections: list[float] = []

    async def handler(connection):
        connections.append(time.monotonic())
        if len(connections) <= cap:
            await connection.close(1012, "restarting")
        else:
            await connection.wait_closed()

    ws = nbws.connect(servers.websocket(handler), **FAST)
    ws.wait_open(5)
    wait_for(lambda: len(connections) >= 6, 10, "six connections")
    ws.close()
    # Each delay is at least half a bound that doubles from 0.05 s to the 0.4 s cap.
    gaps = [later - earlier for earlier, later in itertools.pairwise(connections[:6])]
    bounds = [0.05, 0.1, 0.2, 0.4, 0.4]
    assert all(gap >= bound / 2 for gap, bound in zip(gaps, bounds)), gaps  # never a tight loop


@pytest.mark.parametrize("status", [401, 403, 404])
def test_fatal_http_status_is_not_retried(servers, status):
    """With reconnect=True, HTTP 401/403/404 on the upgrade will not change by retrying: one
    attempt, a one-line ConnectError with the status, then close 1006."""
    attempts = []

    def refuse(connection, request):
        attempts.append(request.path)
        return connection.respond(status, "no\n")

    ws = nbws.connect(servers.websocket(lambda c: None, process_request=refuse) + "/", **FAST)
    rec = Recorder(ws)
    with pytest.raises(nbws.ConnectError) as info:
        ws.wait_open(5)
    assert_one_line(str(info.value))
    assert info.value.status == status
    rec.wait_closed()
    # CLOSED is final: a closed connection never retries (tests/test_state.py), so what is
    # observable is that it closed after one attempt, with no retry scheduled.
    assert ws.ready_state == CLOSED
    assert len(attempts) == 1
    assert rec.types == ["error", "close"]
    assert ws.stats["reconnecting"] is False


def test_unavailable_server_is_retried_and_attempts_are_counted(servers):
    """HTTP 503 on the upgrade is retried with backoff; stats show reconnecting and the attempt
    count, and each failed attempt is an error event; the connection opens once the server does."""
    attempts = []

    def unavailable(connection, request):
        attempts.append(request.path)
        if len(attempts) <= 3:
            return connection.respond(503, "busy\n")
        return None

    async def hello(connection):
        await connection.send("hello")
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(hello, process_request=unavailable) + "/", **FAST)
    rec = Recorder(ws)
    with pytest.raises(nbws.ConnectError, match=r"HTTP 503 .*still retrying in the background"):
        ws.wait_open(5)
    assert ws.stats["reconnecting"] is True and ws.stats["attempts"] >= 1
    assert ws.recv(timeout=10).data == "hello"
    assert len(attempts) == 4
    assert (ws.stats["reconnecting"], ws.stats["attempts"]) == (False, 0)
    assert [e.message.rsplit("(", 1)[1] for e in rec.of("error")] == [
        "attempt 1)",
        "attempt 2)",
        "attempt 3)",
    ]


def test_untrusted_certificate_is_not_retried(tls, servers):
    """With reconnect=True a certificate that fails verification will not pass by retrying."""
    ws = nbws.connect(f"wss://127.0.0.1:{tls['port']}/", **FAST)
    rec = Recorder(ws)
    with pytest.raises(nbws.ConnectError, match="failed verification"):
        ws.wait_open(5)
    rec.wait_closed()
    assert rec.types == ["error", "close"]


def test_reconnect_when_the_server_comes_back(servers):
    """The server is down at first: wait_open says it is still retrying; once the server listens
    on that port, a retry opens it."""
    port = refused_port()
    ws = nbws.connect(f"ws://127.0.0.1:{port}/", **FAST)
    rec = Recorder(ws)
    with pytest.raises(nbws.ConnectError) as info:
        ws.wait_open(5)
    assert_one_line(str(info.value))
    assert str(info.value).endswith("is the server running? (still retrying in the background)")

    async def echo(connection):
        async for message in connection:
            await connection.send(message)

    async def start():
        return await ws_serve(echo, "127.0.0.1", port)

    server = servers.run(start())
    try:
        # websockets < 16 has its own backoff (first retry within 5 s, then 3.1 s and more).
        wait_for(lambda: ws.ready_state == OPEN, 15, "reopening after the server came back")
        ws.send("back")
        assert ws.recv(timeout=5).data == "back"
        assert rec.of("open")[0].reconnect is False
        assert ws.stats["reconnects"] == 0  # the first successful open is not a reopening
    finally:
        ws.close()
        server.close()
        servers.run(server.wait_closed())


def test_oversized_message_closes_1009_and_keeps_what_came_before(servers):
    """max_size bounds an incoming message: a bigger one fails the connection with 1009 and an
    error that names max_size; the messages before it are intact."""

    async def handler(connection):
        await connection.send('{"small": 1}')
        await connection.send(json.dumps({"big": "x" * 5_000}))
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(handler), max_size=1_000)
    rec = Recorder(ws)
    ws.wait_open(5)
    rec.wait_closed()
    assert rec.types == ["open", "message", "error", "close"]
    message = rec.of("error")[0].message
    assert_one_line(message)
    assert "larger than max_size=1,000 bytes" in message and "larger max_size=" in message
    assert (rec.last("close").code, rec.last("close").was_clean) == (1009, False)
    assert list(ws.frame["small"]) == [1]


def test_invalid_utf8_closes_1007_and_keeps_what_came_before(servers):
    """A text frame that is not UTF-8 fails the connection with 1007; earlier messages stay."""

    async def handler(connection):
        await connection.send('{"ok": 1}')
        connection.transport.write(b"\x81\x02\xff\xfe")  # an unmasked text frame: 0xff 0xfe
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(handler))
    rec = Recorder(ws)
    ws.wait_open(5)
    rec.wait_closed()
    assert rec.types == ["open", "message", "error", "close"]
    assert "not valid UTF-8" in rec.of("error")[0].message
    assert rec.last("close").code == 1007
    assert list(ws.frame["ok"]) == [1]


@pytest.mark.parametrize(
    ("raw", "code", "words"),
    [
        (b"\xc1\x01x", 1002, "reserved bits must be 0"),  # RSV1 set, and no extension negotiated
        (b"\x80\x01x", 1002, "unexpected continuation frame"),  # nothing to continue
        (b"\x01\x01[" + b"\x81\x01]", 1002, "expected a continuation frame"),  # a new message mid-message
        (b"\x01\x01\xc3" + b"\x80\x01(", 1007, "not valid UTF-8"),  # not UTF-8 once joined
    ],
    ids=["reserved bits", "stray continuation", "interleaved", "utf-8 across fragments"],
)
def test_frames_that_break_the_protocol_fail_it_and_keep_what_came_before(servers, raw, code, words):
    async def handler(connection):
        await connection.send('{"ok": 1}')
        connection.transport.write(raw)  # (unmasked server frames, written as they are)
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(handler, compression=None))
    rec = Recorder(ws)
    rec.wait_closed()
    assert rec.types == ["open", "message", "error", "close"]
    assert words in rec.of("error")[0].message
    assert rec.last("close").code == code
    assert list(ws.frame["ok"]) == [1]


@pytest.mark.parametrize("code", [0, 1005, 1006, 5000])
def test_a_close_frame_with_a_code_no_one_may_send_is_a_protocol_error(servers, code):
    async def handler(connection):
        connection.transport.write(b"\x88\x02" + code.to_bytes(2, "big"))
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(handler, compression=None))
    rec = Recorder(ws)
    rec.wait_closed()
    assert rec.types == ["open", "error", "close"]
    message = rec.last("error").message  # (each parser words the reason its own way)
    assert "the server broke the WebSocket protocol (" in message and "invalid" in message
    assert (rec.last("close").code, rec.last("close").was_clean) == (1002, False)


def test_a_character_split_between_fragments_arrives_whole(servers):
    async def handler(connection):
        connection.transport.write(b"\x01\x01\xc3" + b"\x80\x01\xa9")  # "é", one byte a frame
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(handler, compression=None))
    assert ws.recv(timeout=5).data == "\u00e9"


def test_stalled_server_with_reconnect_is_reconnected(servers):
    """Keepalive finds the stall (1011) and reconnect=True opens a new connection; the message
    from before the stall is kept."""
    connections = []

    async def handler(connection):
        connections.append(connection)
        if len(connections) == 1:
            await connection.send("before the stall")
            connection.transport.pause_reading()  # never answers pings
            await connection.wait_closed()  # until the client gives up and hangs up
        else:
            await connection.send("after")
            await connection.wait_closed()

    url = servers.websocket(handler, ping_interval=None)
    ws = nbws.connect(url, ping_interval=0.3, ping_timeout=0.3, **FAST)
    rec = Recorder(ws)
    ws.wait_open(5)
    wait_for(lambda: ws.stats["received"] == 2, 10, "the message after reconnecting")
    assert [m.data for m in ws.messages] == ["before the stall", "after"]
    assert "no answer to a ping within ping_timeout=0.3s" in rec.of("error")[0].message
    assert [e.reconnect for e in rec.of("open")] == [False, True]
    ws.close()
    abort_all(servers, connections)
