"""Shared fixtures: a real demo server on 127.0.0.1 (port 0) and small custom servers."""

from __future__ import annotations

import asyncio
import base64
import gc
import hashlib
import importlib.util
import re
import threading
from collections.abc import Iterator

import pytest
from websockets.asyncio.server import serve as ws_serve

import nbws
import nbws.demo


@pytest.fixture(scope="session")
def demo() -> Iterator[nbws.demo.DemoServer]:
    """The demo server, shared by the whole session; ``demo.url`` is ``ws://127.0.0.1:PORT``."""
    server = nbws.demo.start()
    yield server
    server.close()


# The transports installed here: picows only with the extra (pip install "nbws[fast]").
TRANSPORTS = ["websockets", *(["picows"] if importlib.util.find_spec("picows") else [])]


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The test runs once per installed transport: connections made without ``transport=``
    (in this process, and in kernels it starts) use it (``NBWS_TRANSPORT``)."""
    monkeypatch.setenv("NBWS_TRANSPORT", request.param)
    return request.param


@pytest.fixture(autouse=True)
def _close_connections() -> Iterator[None]:
    """Each test leaves no connection open."""
    yield
    nbws.close_all()


class LoopServer:
    """Runs coroutines on a server loop of its own thread (never nbws's loop)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self._servers: list = []
        self._tcp_handlers: set[asyncio.Task] = set()
        self._closing = False

    def run(self, coro, timeout: float = 10):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def websocket(self, handler, **kwargs) -> str:
        """Serve ``handler`` with websockets on 127.0.0.1:0; returns the ``ws://`` URL."""

        async def start():
            server = await ws_serve(handler, "127.0.0.1", 0, **kwargs)
            self._servers.append(server)
            return server.sockets[0].getsockname()[1]

        return f"ws://127.0.0.1:{self.run(start())}"

    def tcp(self, on_connect) -> int:
        """A plain TCP server on 127.0.0.1:0 calling ``on_connect(reader, writer)``; returns port."""

        async def handle(reader, writer):
            self._tcp_handlers.add(asyncio.current_task())
            try:
                if not self._closing:  # (a handler that first runs after stop() began must not stall it)
                    await on_connect(reader, writer)
            finally:  # also when cancelled at teardown: an open transport keeps wait_closed waiting
                writer.close()

        async def start():
            server = await asyncio.start_server(handle, "127.0.0.1", 0)
            self._servers.append(server)
            return server.sockets[0].getsockname()[1]

        return self.run(start())

    def stream(self, payloads: list[bytes]) -> str:
        """A server that answers the handshake, then sends ``payloads`` as text frames as fast as
        the socket takes them (written pre-encoded: millions in seconds), then closes with 1000;
        returns the ``ws://`` URL."""
        parts = []
        for payload in payloads:
            n = len(payload)
            size = bytes([n]) if n < 126 else bytes([126]) + n.to_bytes(2, "big")
            parts.append(b"\x81" + size + payload)
        frames = b"".join(parts) + b"\x88\x02\x03\xe8"

        async def serve(reader, writer):
            request = await reader.readuntil(b"\r\n\r\n")
            key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", request).group(1)
            accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
            writer.write(
                b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
            )
            view = memoryview(frames)
            for start in range(0, len(view), 1 << 20):
                writer.write(view[start : start + (1 << 20)])
                await writer.drain()
            await asyncio.wait_for(reader.read(1 << 16), 30)  # the client's close frame

        return f"ws://127.0.0.1:{self.tcp(serve)}"

    def silent(self, seconds: float = 5) -> int:
        """A TCP server that accepts and never answers (a stalled handshake); returns its port."""

        async def stall(reader, writer):
            await asyncio.sleep(seconds)
            writer.close()

        return self.tcp(stall)

    def close(self) -> None:
        nbws.close_all()  # while the servers still answer the closing handshake

        async def stop():
            self._closing = True
            for server in self._servers:
                server.close()
            # Plain TCP handlers still running (a stalled handshake) would keep wait_closed()
            # waiting on Python >= 3.12, which waits for every connection: cancel them.
            for task in self._tcp_handlers:
                task.cancel()
            await asyncio.wait_for(asyncio.gather(*(s.wait_closed() for s in self._servers)), 5)

        try:
            self.run(stop())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()


@pytest.fixture
def servers() -> Iterator[LoopServer]:
    """Build custom servers for a test (abrupt drops, slow handshakes, HTTP errors)."""
    servers = LoopServer()
    yield servers
    servers.close()


@pytest.fixture
def collections() -> Iterator[list[int]]:
    """The generation of each garbage collection that starts while the test runs, in any thread."""
    started: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start":
            started.append(info["generation"])

    gc.callbacks.append(record)
    yield started
    gc.callbacks.remove(record)
