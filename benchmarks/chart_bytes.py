"""What a live chart's update weighs, holding few points or a million (``benchmarks/run.py`` reports it).

A server on 127.0.0.1 answers each text "N" with N messages of ten numeric-string columns. A
chart of the ten columns (window big enough to hold everything) first takes ``held`` points,
then 60 rows more (600 points); every message the chart hands its comm is recorded at
``Widget._send`` and weighed as JSON plus its binary buffers.

    python benchmarks/chart_bytes.py
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import orjson
from websockets.asyncio.server import serve

import nbws

COLUMNS = [f"p{i}" for i in range(10)]
NEW_ROWS = 60


class RequestServer:
    """Answers each text "N" with N messages of ``COLUMNS``, numbered on from the last one sent."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        threading.Thread(target=self.loop.run_forever, daemon=True).start()
        started = asyncio.run_coroutine_threadsafe(self._start(), self.loop).result(30)
        self.url = f"ws://127.0.0.1:{started}"

    async def _start(self) -> int:
        self.server = await serve(self._handle, "127.0.0.1", 0, compression=None)
        return self.server.sockets[0].getsockname()[1]

    async def _handle(self, connection: Any) -> None:
        sent = 0
        async for request in connection:
            for i in range(sent, sent + int(request)):
                await connection.send("{" + ", ".join(f'"{c}": "{i % 997}.25"' for c in COLUMNS) + "}")
            sent += int(request)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()
            await self.server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(30)
        self.loop.call_soon_threadsafe(self.loop.stop)


def wait_until(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not within {timeout} s")
        time.sleep(0.01)


def update_bytes(server: RequestServer, held: int) -> tuple[int, int]:
    """(bytes, updates) that carry 600 new points to a chart holding ``held`` points."""
    rows = held // len(COLUMNS)
    ws = nbws.connect(server.url)
    try:
        chart = ws.plot(COLUMNS, window=rows + NEW_ROWS)
        ws.send(str(rows))
        wait_until(lambda: sum(chart.series.points_held().values()) == held, 120, f"{held:,} points held")
        reached = threading.Event()
        nbws.loop.call_soon(reached.set)  # after the tick that read them, which sent them
        reached.wait(10)
        weights: list[int] = []
        points: list[int] = []
        send = chart._send

        def weigh(msg: dict, buffers: list | None = None) -> None:
            if msg.get("method") == "custom":
                weights.append(len(orjson.dumps(msg)) + sum(memoryview(b).nbytes for b in buffers or []))
                points.append(sum(series[2] for series in msg["content"]["series"]))
            send(msg, buffers)

        chart._send = weigh
        ws.send(str(NEW_ROWS))
        wait_until(lambda: sum(points) >= NEW_ROWS * len(COLUMNS), 30, "600 new points sent")
        chart.close()
        return sum(weights), len(weights)
    finally:
        ws.close()


def measure(most: int = 1_000_000) -> dict[int, tuple[int, int]]:
    """(bytes, updates) of 600 new points holding 10 points and holding ``most``."""
    server = RequestServer()
    try:
        return {held: update_bytes(server, held) for held in (10, most)}
    finally:
        server.close()


if __name__ == "__main__":
    for held, (size, updates) in measure().items():
        print(f"holding {held:,} points: {size:,} bytes in {updates} updates for 600 new points")
