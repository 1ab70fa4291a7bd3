"""A small WebSocket server for tutorials, tests and ``nbws serve``; loopback by default.

Routes:

- ``/echo``: sends back every message as it came (text or binary).
- ``/ticker?rate=10&count=0&symbols=AAPL,MSFT``: JSON price ticks, ``rate`` per second (0 = as
  fast as possible), ``count`` in all (0 = no end), then a close with 1000. Each tick has
  nested fields: ``{"type": "tick", "seq": 1, "symbol": "AAPL", "price": 101.5,
  "book": {"bid": 101.49, "ask": 101.51}, "ts": 1764130000.123}``. Asked for more than it
  can send, it sends as fast as it can, in batches that leave room for the other clients.
- ``/book?rate=10&count=0&levels=20``: order-book diffs as exchanges send them (~1 KB with 20
  levels): ``{"e": "depthUpdate", "E": 1764130000123, "s": "BTCUSDT", "U": 1001, "u": 1002,
  "b": [["67000.10", "0.52000000"], ...], "a": [...]}``, prices and sizes as decimal strings,
  ``levels`` ``[price, size]`` pairs a side; paced like ``/ticker``.
- ``/market?rate=10&count=0``: ticks as ``/ticker`` sends them, but only after a subscription,
  as exchange feeds do: send ``{"op": "subscribe", "symbols": ["AAPL", "MSFT"]}`` (each is
  answered with ``{"type": "subscribed", "symbols": [...]}``, the symbols so far); ticks come
  for the subscribed symbols only. Something else gets ``{"type": "error", ...}`` back.
- ``/chat``: every message is broadcast to every client on ``/chat``, sender included. A client
  that stops reading does not hold the others up; once ``CHAT_BACKLOG_LIMIT`` bytes wait for it,
  its connection is cut (it sees 1006).
- ``/private``: like ``/echo`` but only with the header ``Authorization: Bearer demo-token``
  (otherwise HTTP 401), to practise headers.
- ``/close?code=4000&reason=bye&after=0``: sends ``after`` messages, then closes with that code.
- ``/drop?after=0``: sends ``after`` messages, then cuts the TCP connection without a close
  frame (the client sees 1006).

``start()`` runs the server on a thread of its own (not nbws's loop thread, so the server never
competes with the client it serves) and returns a ``DemoServer`` with ``.url`` and ``.close()``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from urllib.parse import parse_qs, urlsplit

from websockets.asyncio.server import ServerConnection, broadcast
from websockets.asyncio.server import serve as ws_serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

__all__ = ["BackgroundServer", "DemoServer", "start", "serve", "run", "ROUTES", "DEMO_TOKEN"]

ROUTES = ("/echo", "/ticker", "/market", "/book", "/chat", "/private", "/close", "/drop")
DEMO_TOKEN = "demo-token"
DEFAULT_SYMBOLS = ("AAPL", "MSFT", "NVDA")
TICKER_BATCH = 200  # /ticker and /book yield to the loop after at most this many messages
CHAT_BACKLOG_LIMIT = 16 * 2**20  # bytes queued for a /chat client that stopped reading; then cut


def _query(connection: ServerConnection) -> dict[str, str]:
    return {k: v[-1] for k, v in parse_qs(urlsplit(connection.request.path).query).items()}


def _number(query: dict[str, str], key: str, default: float, cast: type = float) -> float:
    try:
        return cast(query.get(key, default))
    except ValueError:
        return default


async def _paced(
    connection: ServerConnection, query: dict[str, str], make: Callable[[int], dict], end: str
) -> None:
    """Send ``make(1)``, ``make(2)``... as JSON, ``rate`` a second (0: as fast as possible),
    ``count`` in all (0: no end), then close with 1000 and ``end``."""
    rate = _number(query, "rate", 10.0)
    count = int(_number(query, "count", 0, int))
    loop = asyncio.get_running_loop()
    start = loop.time()
    sent = 0
    while count == 0 or sent < count:
        # At most TICKER_BATCH messages between two yields to the loop, even when behind
        # schedule (rate above what the server can send): a backlog written in one go would
        # starve every other client, and the server's accept too.
        due = sent + TICKER_BATCH
        if rate > 0:
            due = min(due, int((loop.time() - start) * rate) + 1)
        if count:
            due = min(due, count)
        for seq in range(sent + 1, due + 1):
            await connection.send(json.dumps(make(seq), separators=(",", ":")))
        sent = due
        if rate > 0 and (count == 0 or sent < count):
            await asyncio.sleep(max(0.0, start + sent / rate - loop.time()))
        else:
            await asyncio.sleep(0)  # at full speed, still let the other clients be served
    await connection.close(1000, end)


def _ticks(symbols: list[str]) -> Callable[[int], dict]:
    """Tick number ``seq``: the symbols in turn, each price a random walk."""
    prices: dict[str, float] = {}
    rng = random.Random(0)

    def tick(seq: int) -> dict:
        symbol = symbols[seq % len(symbols)]
        last = prices.get(symbol, 100.0 + 10 * symbols.index(symbol))
        price = prices[symbol] = round(last * (1 + rng.gauss(0, 0.001)), 2)
        return {
            "type": "tick",
            "seq": seq,
            "symbol": symbol,
            "price": price,
            "book": {"bid": round(price - 0.01, 2), "ask": round(price + 0.01, 2)},
            "ts": round(time.time(), 3),
        }

    return tick


class _Demo:
    """The routes' state: the clients of /chat."""

    def __init__(self) -> None:
        self.chat: set[ServerConnection] = set()

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = urlsplit(request.path).path
        if path not in ROUTES:
            return connection.respond(404, f"no route {path}; try one of {', '.join(ROUTES)}\n")
        if path == "/private" and request.headers.get("Authorization") != f"Bearer {DEMO_TOKEN}":
            return connection.respond(401, f"send the header 'Authorization: Bearer {DEMO_TOKEN}'\n")
        return None

    async def handle(self, connection: ServerConnection) -> None:
        path = urlsplit(connection.request.path).path
        handler = {
            "/echo": self.echo,
            "/private": self.echo,
            "/ticker": self.ticker,
            "/market": self.market,
            "/book": self.book,
            "/chat": self.chat_room,
            "/close": self.close_with,
            "/drop": self.drop,
        }[path]
        with contextlib.suppress(ConnectionClosed):
            await handler(connection)

    async def echo(self, connection: ServerConnection) -> None:
        async for message in connection:
            await connection.send(message)

    async def ticker(self, connection: ServerConnection) -> None:
        query = _query(connection)
        symbols = [s for s in query.get("symbols", ",".join(DEFAULT_SYMBOLS)).split(",") if s]
        await _paced(connection, query, _ticks(symbols or list(DEFAULT_SYMBOLS)), "end of ticker")

    async def market(self, connection: ServerConnection) -> None:
        subscribed: list[str] = []
        ticking: asyncio.Task | None = None
        try:
            async for message in connection:
                try:
                    request = json.loads(message)
                    assert request["op"] == "subscribe"
                    symbols = [str(s) for s in request["symbols"]]
                except (ValueError, TypeError, KeyError, AssertionError):
                    hint = 'send {"op": "subscribe", "symbols": ["AAPL"]}'
                    await connection.send(json.dumps({"type": "error", "message": hint}))
                    continue
                subscribed += [s for s in symbols if s not in subscribed]
                await connection.send(json.dumps({"type": "subscribed", "symbols": subscribed}))
                if ticking is None and subscribed:
                    ticks = _ticks(subscribed)  # (the list grows with later subscriptions)
                    ticking = asyncio.create_task(
                        _paced(connection, _query(connection), ticks, "end of market")
                    )
        finally:
            if ticking is not None:
                ticking.cancel()

    async def book(self, connection: ServerConnection) -> None:
        query = _query(connection)
        levels = max(1, min(int(_number(query, "levels", 20, int)), 1_000))
        rng = random.Random(0)
        mid = 67_000.0

        def side(sign: int) -> list[list[str]]:
            return [[f"{mid + sign * 0.01 * (k + 1):.2f}", f"{rng.random() * 3:.8f}"] for k in range(levels)]

        def diff(seq: int) -> dict:
            nonlocal mid
            mid = round(mid + rng.gauss(0, 0.5), 2)
            return {
                "e": "depthUpdate",
                "E": time.time_ns() // 1_000_000,
                "s": "BTCUSDT",
                "U": 2 * seq - 1,
                "u": 2 * seq,
                "b": side(-1),
                "a": side(1),
            }

        await _paced(connection, query, diff, "end of book")

    async def chat_room(self, connection: ServerConnection) -> None:
        self.chat.add(connection)
        try:
            async for message in connection:
                # broadcast() queues the message on every open client without waiting for any
                # of them, so a client that stops reading never stalls the room. Nothing else
                # bounds its queue (keepalive pings wait behind it), so past the limit it is cut.
                broadcast(self.chat, message)
                for client in list(self.chat):
                    if client.transport.get_write_buffer_size() > CHAT_BACKLOG_LIMIT:
                        self.chat.discard(client)
                        client.transport.abort()
        finally:
            self.chat.discard(connection)

    async def close_with(self, connection: ServerConnection) -> None:
        query = _query(connection)
        for i in range(int(_number(query, "after", 0, int))):
            await connection.send(json.dumps({"seq": i + 1}))
        code = int(_number(query, "code", 1000, int))
        await connection.close(code, query.get("reason", ""))

    async def drop(self, connection: ServerConnection) -> None:
        for i in range(int(_number(_query(connection), "after", 0, int))):
            await connection.send(json.dumps({"seq": i + 1}))
        await asyncio.sleep(0.05)  # let the messages leave before the cut
        connection.transport.abort()


class BackgroundServer:
    """A websockets server on a thread of its own; ``url`` is its base, ``close()`` stops it.

    Subclasses give the connection handler (and optionally a ``process_request``).
    """

    thread_name = "nbws-server"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self.host = host
        self.url = ""
        self._loop = asyncio.new_event_loop()
        self._stopped: asyncio.Future | None = None
        ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(
            target=self._run, args=(port, ready), name=self.thread_name, daemon=True
        )
        self._thread.start()
        ready.wait()
        if self._error is not None:
            raise self._error

    async def handle(self, connection: ServerConnection) -> None:
        raise NotImplementedError

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        return None

    def _run(self, port: int, ready: threading.Event) -> None:
        asyncio.set_event_loop(self._loop)
        try:
            self._loop.run_until_complete(self._serve(port, ready))
        except BaseException as exc:  # noqa: BLE001 - handed to the starting thread
            self._error = exc
            ready.set()
        finally:
            self._loop.close()

    async def _serve(self, port: int, ready: threading.Event) -> None:
        self._stopped = asyncio.get_running_loop().create_future()
        async with ws_serve(
            self.handle, self.host, port, process_request=self.process_request, max_size=None
        ) as server:
            self.port = server.sockets[0].getsockname()[1]
            host = f"[{self.host}]" if ":" in self.host else self.host
            self.url = f"ws://{host}:{self.port}"
            ready.set()
            await self._stopped

    def close(self) -> None:
        """Stop the server (open connections are closed with 1001) and join its thread."""
        if self._thread.is_alive() and self._stopped is not None:
            self._loop.call_soon_threadsafe(lambda: self._stopped.done() or self._stopped.set_result(None))
            self._thread.join(10)

    def serve_forever(self) -> None:
        """Block until the server stops or Ctrl-C, then stop it."""
        try:
            while self._thread.is_alive():
                self._thread.join(0.5)
        except KeyboardInterrupt:
            pass
        finally:
            self.close()

    def __enter__(self) -> BackgroundServer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<{type(self).__module__}.{type(self).__name__} {self.url}>"


class DemoServer(BackgroundServer):
    """The demo server (routes above) running on a thread of its own."""

    thread_name = "nbws-demo"

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._demo = _Demo()
        super().__init__(host, port)

    async def handle(self, connection: ServerConnection) -> None:
        await self._demo.handle(connection)

    def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        return self._demo.process_request(connection, request)


def start(host: str = "127.0.0.1", port: int = 0) -> DemoServer:
    """Start the demo server in the background; port 0 picks a free one (see ``.url``)."""
    return DemoServer(host, port)


@contextlib.contextmanager
def serve(host: str = "127.0.0.1", port: int = 0) -> Iterator[str]:
    """``with nbws.demo.serve() as url:`` runs the demo server for the block; yields its base URL."""
    server = start(host, port)
    try:
        yield server.url
    finally:
        server.close()


def run(host: str = "127.0.0.1", port: int = 8765) -> None:
    """Serve in the foreground until interrupted (what ``nbws serve`` does)."""
    server = start(host, port)
    print(f"nbws demo server on {server.url} (routes: {', '.join(ROUTES)}); Ctrl-C stops it", flush=True)
    server.serve_forever()
