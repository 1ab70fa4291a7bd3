"""Record and replay: ``ws.save(path)`` writes what a connection received; ``nbws.replay(path)``
serves it again as a local WebSocket server, so a notebook recorded against a live feed runs
anywhere later (in CI, on Binder, offline).

A recording is JSON Lines, one message a line, in the order received:
``{"t": 1764130000.123456, "data": "..."}`` for text and ``{"t": ..., "data_base64": "..."}``
for binary; ``t`` is the arrival time in seconds since the epoch (UTC).
"""

from __future__ import annotations

import asyncio
import base64
import contextvars
import json
import sys
from collections.abc import Iterable
from os import PathLike
from pathlib import Path

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed

from .demo import BackgroundServer
from .events import MessageEvent

__all__ = ["ReplayServer", "replay", "write_recording", "read_recording", "PROGRESS_FROM"]

# Recordings at least this long show a progress bar (tqdm) while a client is being served.
PROGRESS_FROM = 10_000


def write_recording(events: Iterable[MessageEvent], path: str | PathLike) -> int:
    """Write messages to ``path`` as an nbws recording; returns how many were written."""
    count = 0
    with open(path, "w", encoding="utf-8") as out:
        for event in events:
            record: dict = {"t": round(event.received_at.timestamp(), 6)}
            if isinstance(event.data, bytes):
                record["data_base64"] = base64.b64encode(event.data).decode("ascii")
            else:
                record["data"] = event.data
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
            count += 1
    return count


def read_recording(path: str | PathLike) -> list[tuple[float, str | bytes]]:
    """The (time, data) pairs of a recording; ValueError names the first line that is not one."""
    messages: list[tuple[float, str | bytes]] = []
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                t = float(record["t"])
                data = (
                    base64.b64decode(record["data_base64"], validate=True)
                    if "data_base64" in record
                    else record["data"]
                )
                if not isinstance(data, (str, bytes)):
                    raise TypeError("data must be a string")
            except (ValueError, KeyError, TypeError) as exc:
                raise ValueError(
                    f"line {number} of {path} is not an nbws recording line ({exc!r}); "
                    "record one with ws.save(path)"
                ) from None
            messages.append((t, data))
    return messages


class ReplayServer(BackgroundServer):
    """Serves a recording to every client that connects (any path), then closes with 1000.

    ``speed`` scales the recorded gaps: 1 is real time, 10 ten times faster, 0 as fast as possible.
    """

    thread_name = "nbws-replay"

    def __init__(
        self,
        path: str | PathLike,
        speed: float = 1.0,
        host: str = "127.0.0.1",
        port: int = 0,
        progress: bool | None = None,
    ) -> None:
        if speed < 0:
            raise ValueError(f"speed must be 0 (as fast as possible) or positive, not {speed!r}")
        self.path = Path(path)
        self.speed = speed
        self.recording = read_recording(self.path)
        self.progress = len(self.recording) >= PROGRESS_FROM if progress is None else progress
        # Progress bars print where replay() was called (ipykernel 7 routes output by context).
        self._context = contextvars.copy_context()
        super().__init__(host, port)

    async def handle(self, connection: ServerConnection) -> None:
        recording = self.recording
        bar = self._context.run(self._bar) if self.progress else None
        loop = asyncio.get_running_loop()
        start = loop.time()
        first = recording[0][0] if recording else 0.0
        try:
            for i, (t, data) in enumerate(recording):
                if self.speed > 0:
                    delay = start + (t - first) / self.speed - loop.time()
                    if delay > 0:
                        await asyncio.sleep(delay)
                elif i % 1000 == 999:
                    await asyncio.sleep(0)  # at full speed, still serve the other clients
                await connection.send(data)
                if bar is not None and i % 1000 == 999:
                    self._context.run(bar.update, 1000)
            if bar is not None:
                self._context.run(bar.update, len(recording) % 1000)
            await connection.close(1000, "end of recording")
        except ConnectionClosed:
            pass
        finally:
            if bar is not None:
                self._context.run(bar.close)

    def _bar(self):
        from tqdm import tqdm

        return tqdm(
            total=len(self.recording),
            desc=f"replaying {self.path.name}",
            unit="msg",
            file=sys.stderr,
            mininterval=0.5,
        )


def replay(
    path: str | PathLike,
    speed: float = 1.0,
    host: str = "127.0.0.1",
    port: int = 0,
    progress: bool | None = None,
) -> ReplayServer:
    """Serve a recording made with ``ws.save(path)`` as a local WebSocket server.

    Returns the running server: connect to ``server.url``; ``server.close()`` stops it. Each
    client gets every message with the recorded timing divided by ``speed`` (0: no waiting),
    then a close with 1000. Long recordings show a progress bar while being served.
    """
    return ReplayServer(path, speed=speed, host=host, port=port, progress=progress)
