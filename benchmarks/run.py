"""nbws benchmarks: N small JSON messages received all the way to a ready DataFrame.

    python benchmarks/run.py            # 200,000 messages, median of 3, writes benchmarks/RESULTS.md
    python benchmarks/run.py --quick    # a 5,000-message smoke run (the test suite runs this)

Every case receives the same messages from the same server, in the same run, so the ratios
compare like with like on a shared machine. The server runs in a process of its own on
127.0.0.1 and writes pre-encoded frames in 1 MiB slices, so it is never the bottleneck.

Cases: A websockets' asyncio client + orjson into a list, then a DataFrame (the transport's
limit); B websocket-client's WebSocketApp (what users pick now); C one pd.concat per message
(what notebooks often do; stopped early, extrapolated); D nbws connect -> wait_closed -> ws.frame,
also with a message listener and with the panel (dummy comm); E aiohttp's client + orjson (a
compiled frame reader: where nbws could go next).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import multiprocessing
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib.metadata import version
from pathlib import Path

import orjson
import pandas as pd

HERE = Path(__file__).parent
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN")


# -- the server ------------------------------------------------------------------------------


def make_messages(n: int) -> list[bytes]:
    """~70-byte JSON messages; every third one nested (``book``), so flattening is exercised."""
    messages = []
    for i in range(n):
        price = 100 + (i % 1000) / 100
        if i % 3 == 0:
            body = {
                "seq": i,
                "sym": SYMBOLS[i % 4],
                "px": price,
                "book": {"b": price - 0.01, "a": price + 0.01},
            }
        else:
            body = {
                "seq": i,
                "sym": SYMBOLS[i % 4],
                "px": price,
                "qty": i % 500,
                "side": "b" if i % 2 else "s",
            }
        messages.append(orjson.dumps(body))
    return messages


def encode_frames(messages: list[bytes]) -> bytes:
    """Unmasked server text frames, back to back, then a close frame with 1000."""
    parts = []
    for payload in messages:
        n = len(payload)
        header = bytes([0x81, n]) if n < 126 else bytes([0x81, 126]) + n.to_bytes(2, "big")
        parts.append(header + payload)
    parts.append(b"\x88\x02\x03\xe8")
    return b"".join(parts)


def serve(n: int, ready: multiprocessing.Queue) -> None:
    """Run in a process of its own: every client gets the same n pre-encoded frames."""
    stream = encode_frames(make_messages(n))

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        request = await reader.readuntil(b"\r\n\r\n")
        key = re.search(rb"(?i)sec-websocket-key:\s*(\S+)", request).group(1)
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        writer.write(
            b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n"
        )
        view = memoryview(stream)
        try:
            for start in range(0, len(view), 1 << 20):
                writer.write(view[start : start + (1 << 20)])
                await writer.drain()
            await asyncio.wait_for(reader.read(1 << 16), 30)  # the client's close frame
        except (TimeoutError, ConnectionError):
            pass  # a client that left early (the panel case stops its kernel mid-stream)
        writer.close()

    async def main() -> None:
        server = await asyncio.start_server(handle, "127.0.0.1", 0)
        ready.put(server.sockets[0].getsockname()[1])
        await server.serve_forever()

    asyncio.run(main())


# -- the cases -------------------------------------------------------------------------------


def case_a(url: str, n: int) -> pd.DataFrame:
    import websockets
    from websockets.asyncio.client import connect

    async def main() -> list:
        rows = []
        append, loads = rows.append, orjson.loads
        async with connect(url, max_size=None, compression=None) as ws:
            try:
                while True:
                    append(loads(await ws.recv()))
            except websockets.ConnectionClosed:
                pass
        return rows

    return pd.DataFrame(asyncio.run(main()))


def case_b(url: str, n: int) -> pd.DataFrame:
    import websocket

    rows = []
    append, loads = rows.append, orjson.loads
    app = websocket.WebSocketApp(url, on_message=lambda ws, message: append(loads(message)))
    app.run_forever()
    return pd.DataFrame(rows)


def case_c_rows(url: str, n: int, stop_after: int) -> tuple[float, float]:
    """Receive everything, but build the frame one pd.concat per message for the first rows.

    Returns (seconds for those rows, seconds for half of them) to extrapolate the quadratic.
    """
    import websockets
    from websockets.asyncio.client import connect

    async def main() -> list:
        rows = []
        async with connect(url, max_size=None, compression=None) as ws:
            try:
                while True:
                    rows.append(orjson.loads(await ws.recv()))
            except websockets.ConnectionClosed:
                pass
        return rows

    rows = asyncio.run(main())
    frame = pd.DataFrame()
    start = time.perf_counter()
    half = 0.0
    for i, row in enumerate(rows[:stop_after]):
        frame = pd.concat([frame, pd.json_normalize(row)], ignore_index=True)
        if i + 1 == stop_after // 2:
            half = time.perf_counter() - start
    return time.perf_counter() - start, half


def case_d(url: str, n: int, variant: str = "") -> pd.DataFrame:
    import nbws

    ws = nbws.connect(url, name=f"bench{variant}")
    if variant == "listener":
        ws.add_event_listener("message", lambda event: None)
    elif variant == "panel":
        ws.panel()
    ws.wait_closed(600)
    return ws.frame


def case_e(url: str, n: int) -> pd.DataFrame:
    import aiohttp

    async def main() -> list:
        rows = []
        append, loads = rows.append, orjson.loads
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, max_msg_size=0, compress=0) as ws:
                async for message in ws:
                    if message.type == aiohttp.WSMsgType.TEXT:
                        append(loads(message.data))
        return rows

    return pd.DataFrame(asyncio.run(main()))


# -- measuring -------------------------------------------------------------------------------


def timed(fn: Callable[[], pd.DataFrame], n: int, repeat: int) -> float:
    """Median seconds of ``repeat`` runs; each must deliver all n rows."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        frame = fn()
        times.append(time.perf_counter() - start)
        assert len(frame) == n, f"{fn} gave {len(frame)} rows, not {n}"
    return statistics.median(times)


def refresh_curve(sizes: list[int], new_rows: int = 1_000, rounds: int = 5) -> list[tuple[int, float, float]]:
    """Seconds for ws.frame after ``new_rows`` more messages on top of each held size.

    Median and worst of ``rounds`` refreshes in a row (some cross a chunk boundary, some not).
    """
    from nbws.store import MessageStore

    messages = [m.decode() for m in make_messages(new_rows)]
    results = []
    for held in sizes:
        store = MessageStore()
        for i, payload in enumerate(make_messages(held)):
            store.append(payload.decode(), i)
        store.frame()  # warm: what a user who looked before has cached
        times = []
        for r in range(rounds):
            for i, payload in enumerate(messages):
                store.append(payload, held + r * new_rows + i)
            start = time.perf_counter()
            store.frame()
            times.append(time.perf_counter() - start)
        results.append((held, statistics.median(times), max(times)))
    return results


MEMORY_PROBE = """
import os, sys, threading, time
import nbws, nbws.loop, nbws.store
nbws.loop.get_loop()
warm = nbws.store.MessageStore(chunk_size=1)  # imports pyarrow (its JSON reader) before the baseline
warm.append('{"warm": {"up": [1]}}', 0)
warm.frame()
def rss_mb():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
def sample(received):
    # (messages in, RSS growth MB, Python threads, OS threads (pyarrow's too), open fds)
    tasks, fds = len(os.listdir("/proc/self/task")), len(os.listdir("/proc/self/fd"))
    return (received, rss_mb() - before, threading.active_count(), tasks, fds)
url, n, max_rows = sys.argv[1], int(sys.argv[2]), sys.argv[3]
max_rows = None if max_rows == "none" else int(max_rows)
before = rss_mb()
ws = nbws.connect(url, max_rows=max_rows)
samples = []
while ws.ready_state != nbws.CLOSED:
    time.sleep(0.05)
    samples.append(sample(ws.stats["received"]))
frame = ws.frame
samples.append(sample(ws.stats["received"]))
peak = max(s[1] for s in samples)
print(peak, frame.memory_usage(deep=True).sum() / 2**20, len(frame), samples)
"""


def memory(url: str, n: int, max_rows: int | None) -> tuple[float, float, int, list]:
    out = subprocess.run(
        [sys.executable, "-c", MEMORY_PROBE, url, str(n), str(max_rows or "none")],
        capture_output=True,
        text=True,
        timeout=900,
        check=True,
    ).stdout
    peak, frame_mb, rows, samples = out.split(" ", 3)
    return float(peak), float(frame_mb), int(rows), eval(samples)  # our own output


def panel_in_kernel(url: str, seconds: float) -> tuple[float, float, int, int]:
    """A kernel shows the panel of a full-speed stream; meanwhile trivial cells run.

    Returns (p50, p95 round trip of a trivial cell in seconds, busiest second's widget
    updates on IOPub, messages received by then).
    """
    import tempfile

    sys.path.insert(0, str(HERE.parent / "tests"))
    from kernel import Kernel

    kernel = Kernel(Path(tempfile.mkdtemp()))
    try:
        kernel.wait([kernel.submit(f"import nbws\nws = nbws.connect({url!r}, name='fast')\nws")])
        trips = []
        end = time.monotonic() + seconds
        while time.monotonic() < end and len(trips) < 500:
            start = time.perf_counter()
            msg_id = kernel.submit("1 + 1")
            kernel.reply(msg_id)
            trips.append(time.perf_counter() - start)
            kernel.wait([msg_id])
        received = int(kernel.run("print(ws.stats['received'])").strip())
        kernel.drain(0.5)
    finally:
        kernel.shutdown()
    updates = sorted(m["header"]["date"].timestamp() for m in kernel.iopub if m["msg_type"] == "comm_msg")
    busiest = max((sum(1 for t in updates[i:] if t - u < 1.0) for i, u in enumerate(updates)), default=0)
    trips.sort()
    return trips[len(trips) // 2], trips[int(len(trips) * 0.95)], busiest, received


def start_server(n: int) -> tuple[multiprocessing.Process, str]:
    ready: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    proc = multiprocessing.get_context("spawn").Process(target=serve, args=(n, ready), daemon=True)
    proc.start()
    return proc, f"ws://127.0.0.1:{ready.get(timeout=120)}/"


def versions() -> str:
    names = ["nbws", "websockets", "websocket-client", "aiohttp", "pandas", "pyarrow", "orjson", "ipywidgets"]
    return ", ".join(f"{name} {version(name)}" for name in names)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run; writes no RESULTS.md")
    parser.add_argument("--messages", type=int, help="messages per case (default 200,000; quick 5,000)")
    parser.add_argument("--repeat", type=int, help="runs per case, median reported (default 3; quick 1)")
    args = parser.parse_args(argv)
    n = args.messages or (5_000 if args.quick else 200_000)
    repeat = args.repeat or (1 if args.quick else 3)
    proc, url = start_server(n)
    lines: list[str] = []

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    try:
        say(f"# nbws benchmarks: {n:,} messages, median of {repeat}")
        say()
        say(f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
        say(versions())
        say()
        results = {
            "A  websockets + orjson -> list -> DataFrame": timed(lambda: case_a(url, n), n, repeat),
            "B  websocket-client WebSocketApp -> list -> DataFrame": timed(lambda: case_b(url, n), n, repeat),
            "D  nbws connect -> ws.frame": timed(lambda: case_d(url, n), n, repeat),
            "D' nbws with a message listener": timed(lambda: case_d(url, n, "listener"), n, repeat),
            'D" nbws with the panel (dummy comm)': timed(lambda: case_d(url, n, "panel"), n, repeat),
            "E  aiohttp + orjson -> list -> DataFrame": timed(lambda: case_e(url, n), n, repeat),
        }
        stop_after = min(n, 2_000 if args.quick else 10_000)
        concat_time, half_time = case_c_rows(url, n, stop_after)
        # t(k) = a*k + b*k^2 through (k/2, half) and (k, full), extrapolated to n
        k = stop_after
        b = (concat_time - 2 * half_time) / (k * k / 2) if k > 1 else 0.0
        a = (concat_time - b * k * k) / k
        results[f"C  one pd.concat per message (first {k:,}, extrapolated)"] = max(
            a * n + b * n * n, concat_time
        )
        base = results["A  websockets + orjson -> list -> DataFrame"]
        say("| case | msgs/s | seconds | vs A |")
        say("|---|---:|---:|---:|")
        for name, seconds in sorted(results.items()):
            say(f"| {name} | {n / seconds:,.0f} | {seconds:.3f} | {base / seconds:.2f} |")
        d = results["D  nbws connect -> ws.frame"]
        say()
        b_time = results["B  websocket-client WebSocketApp -> list -> DataFrame"]
        e_time = results["E  aiohttp + orjson -> list -> DataFrame"]
        say(
            f"D / A = {base / d:.2f} (target >= 0.85); D / B = {b_time / d:.2f} (target >= 3); "
            f"D / E = {e_time / d:.2f}"
        )
        say()
        sizes = [1_000, 10_000] if args.quick else [10_000, 100_000, 1_000_000]
        say("ws.frame again after 1,000 new messages (target: proportional to the new rows)")
        say()
        say("| rows held | median seconds | worst seconds |")
        say("|---:|---:|---:|")
        for held, median, worst in refresh_curve(sizes):
            say(f"| {held:,} | {median:.4f} | {worst:.4f} |")
        say()
        peak, frame_mb, rows, _ = memory(url, n, None)
        say(
            f"memory: peak growth {peak:.0f} MB while streaming {n:,} messages; final frame "
            f"{frame_mb:.0f} MB deep (target: peak <= 2 x frame + 50 MB = {2 * frame_mb + 50:.0f} MB)"
        )
        panel_n = 50_000 if args.quick else 1_500_000
        panel_proc, panel_url = start_server(panel_n)
        try:
            p50, p95, busiest, received = panel_in_kernel(panel_url, 2 if args.quick else 6)
        finally:
            panel_proc.terminate()
        say(
            f"panel displayed in a kernel, full-speed stream ({received:,} messages in): a trivial cell's "
            f"round trip p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (target <= 50 ms); busiest "
            f"second {busiest} widget updates on IOPub (target <= 20)"
        )
        soak_n, soak_rows = (50_000, 5_000) if args.quick else (2_000_000, 100_000)
        soak_proc, soak_url = start_server(soak_n)
        try:
            _, _, rows, samples = memory(soak_url, soak_n, soak_rows)
        finally:
            soak_proc.terminate()
        # From a quarter of the way (the store is full by then) to the end; [-1] is after ws.frame.
        settled = [s for s in samples[:-1] if s[0] >= soak_n // 4]

        def flat(i: int) -> str:
            values = [s[i] for s in settled]
            return f"{values[0]} -> {values[-1]} (max {max(values)})"

        say(
            f"memory with max_rows={soak_rows:,} over {soak_n:,} messages: {rows:,} rows kept; from a "
            f"quarter of the way to the end ({len(settled)} samples): RSS growth {settled[0][1]:.0f} -> "
            f"{settled[-1][1]:.0f} MB, Python threads {flat(2)}, OS threads {flat(3)}, open fds {flat(4)} "
            "(target: all flat)"
            if settled
            else "memory soak: too fast to sample"
        )
    finally:
        proc.terminate()
    if not args.quick:
        (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
