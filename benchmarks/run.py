"""nbws benchmarks: messages of the shapes real feeds send, received all the way to a ready DataFrame.

    python benchmarks/run.py            # every shape, 7 interleaved rounds, writes RESULTS.md
    python benchmarks/run.py --quick    # a small smoke run (the test suite runs this)

Every case receives the same messages from the same server, in the same run, so the ratios
compare like with like on a shared machine. The server runs in a process of its own on
127.0.0.1 and writes pre-encoded frames in 1 MiB slices, so it is never the bottleneck.

Shapes (``shapes.py``): small flat ticks, ~1 KB order-book diffs, ~330 B exchange tickers, a mix
of shapes on one socket, book diffs with 64 KB snapshots, binary frames.

Cases: A websockets' asyncio client + orjson into a list, then a DataFrame (the transport's
limit); B websocket-client's WebSocketApp (what users pick now); C one pd.concat per message
(what notebooks often do; stopped early, extrapolated; small ticks only); D nbws connect ->
wait_closed -> ws.frame, also with a message listener (D') and with the panel (D", dummy comm,
whose widget updates are counted in bytes) and with ``archive=`` (F: every row also written to
a Parquet dataset; its time ends when the last file is written); E aiohttp's client + orjson (a
compiled frame reader: where nbws could go next). Binary frames have no frame: every case keeps the messages.
Each case's row also gives how many full collections CPython's garbage collector made during it
(median over the rounds) and their seconds: on order books and mixed feeds they are most of a
plain loop's time. Every case's time ends with a collection of the young generations, so that no
case leaves the walk of what it allocated to the next one (see ``timed``).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import hashlib
import math
import multiprocessing
import os
import platform
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from importlib.metadata import version
from importlib.util import find_spec
from pathlib import Path

import chart_bytes
import orjson
import pandas as pd
from collections_probe import Collections
from shapes import SHAPES, is_binary

HERE = Path(__file__).parent
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

# Messages per case for each shape: about a second or two for A on a 2-core machine.
COUNTS = {
    "small": 150_000,
    "book": 15_000,
    "ticker": 60_000,
    "mixed": 40_000,
    "snapshots": 10_000,
    "binary": 100_000,
}
QUICK_COUNT = 2_000
ARCHIVE_PAIRS = 81  # back-to-back D and F runs per shape for F / D (see archive_cost)


# picows comes with nbws[fast]: without it, no cases G and H.
HAS_PICOWS = find_spec("picows") is not None


def make_messages(n: int) -> list[bytes]:
    """Small flat ticks (the refresh curve and the memory checks use them)."""
    return SHAPES["small"](n)


# -- the server ------------------------------------------------------------------------------


def encode_frames(messages: list[bytes | bytearray]) -> bytes:
    """Unmasked server frames (text, or binary for ``bytearray``), back to back, then a close
    frame with 1000."""
    parts = []
    for payload in messages:
        n = len(payload)
        opcode = 0x82 if is_binary(payload) else 0x81
        if n < 126:
            header = bytes([opcode, n])
        elif n < 1 << 16:
            header = bytes([opcode, 126]) + n.to_bytes(2, "big")
        else:
            header = bytes([opcode, 127]) + n.to_bytes(8, "big")
        parts.append(header + payload)
    parts.append(b"\x88\x02\x03\xe8")
    return b"".join(parts)


def serve(n: int, ready: multiprocessing.Queue, shape: str = "small") -> None:
    """Run in a process of its own: every client gets the same n pre-encoded frames."""
    stream = encode_frames(SHAPES[shape](n))

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


def _keep(binary: bool) -> Callable:
    """What a bare loop does with each message: parse it, or keep binary frames as they are."""
    return (lambda message: message) if binary else orjson.loads


def _result(rows: list, binary: bool) -> pd.DataFrame | list:
    return rows if binary else pd.DataFrame(rows)


def case_a(url: str, n: int, binary: bool = False) -> pd.DataFrame | list:
    import websockets
    from websockets.asyncio.client import connect

    async def main() -> list:
        rows = []
        append, keep = rows.append, _keep(binary)
        async with connect(url, max_size=None, compression=None) as ws:
            try:
                while True:
                    append(keep(await ws.recv()))
            except websockets.ConnectionClosed:
                pass
        return rows

    return _result(asyncio.run(main()), binary)


def case_b(url: str, n: int, binary: bool = False) -> pd.DataFrame | list:
    import websocket

    rows = []
    append, keep = rows.append, _keep(binary)
    app = websocket.WebSocketApp(url, on_message=lambda ws, message: append(keep(message)))
    app.run_forever()
    return _result(rows, binary)


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


# (time.monotonic(), bytes) of every widget update the panel sent (ipywidgets 7 opens no comm
# without a kernel, so at the floor versions nothing is sent or counted).
WIDGET_UPDATES: list[tuple[float, int]] = []
PANELS: list = []  # the panel cases' panels
ARCHIVES: list[str] = []  # the archive cases' folders, removed after each case


def count_widget_updates() -> None:
    """Make ipywidgets record the size of each state update it sends (here, with no kernel, to
    a comm that drops it): ``Widget._send``, in ipywidgets 7 and 8 alike."""
    import ipywidgets

    send = ipywidgets.Widget._send

    def counting_send(self, msg, buffers=None):
        if msg.get("method") == "update":
            size = len(orjson.dumps(msg)) + sum(len(buffer) for buffer in buffers or ())
            WIDGET_UPDATES.append((time.monotonic(), size))
        return send(self, msg, buffers)

    ipywidgets.Widget._send = counting_send


def case_d(url: str, n: int, binary: bool = False, variant: str = "") -> pd.DataFrame | list:
    import nbws

    archive = None
    if variant == "archive":
        archive = tempfile.mkdtemp(prefix="nbws-bench-")
        ARCHIVES.append(archive)
    transport = "picows" if variant == "picows" else "websockets"  # (whatever NBWS_TRANSPORT says)
    ws = nbws.connect(url, name=f"bench{variant}", archive=archive, transport=transport)
    if variant == "listener":
        ws.add_event_listener("message", lambda event: None)
    elif variant == "panel":
        PANELS.append(ws.panel())
    ws.wait_closed(600)  # (with archive=, until the last file is written)
    return ws.messages if binary else ws.frame


def remove_archives() -> None:
    while ARCHIVES:
        shutil.rmtree(ARCHIVES.pop(), ignore_errors=True)


def case_e(url: str, n: int, binary: bool = False) -> pd.DataFrame | list:
    import aiohttp

    async def main() -> list:
        rows = []
        append, keep = rows.append, _keep(binary)
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(url, max_msg_size=0, compress=0) as ws:
                async for message in ws:
                    if message.type in (aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY):
                        append(keep(message.data))
        return rows

    return _result(asyncio.run(main()), binary)


def case_h(url: str, n: int, binary: bool = False) -> pd.DataFrame | list:
    """A bare picows loop: each data frame's payload parsed (orjson takes the bytes) or kept."""
    from picows import WSListener, WSMsgType, ws_connect

    rows: list = []
    append, keep = rows.append, _keep(binary)
    data = (WSMsgType.TEXT, WSMsgType.BINARY)

    class Listener(WSListener):
        def on_ws_frame(self, transport, frame):
            if frame.msg_type in data:
                append(keep(frame.get_payload_as_bytes()))
            elif frame.msg_type is WSMsgType.CLOSE:
                transport.send_close(frame.get_close_code())
                transport.disconnect()

    async def main() -> None:
        transport, _ = await ws_connect(Listener, url, max_frame_size=2**62)
        await transport.wait_disconnected()

    asyncio.run(main())
    return _result(rows, binary)


def busiest_second(updates: list[tuple[float, int]]) -> tuple[int, int]:
    """The most updates and the most bytes in any one-second window."""
    updates = sorted(updates)
    most = (0, 0)
    for i, (start, _) in enumerate(updates):
        window = [size for when, size in updates[i:] if when - start < 1.0]
        most = max(most[0], len(window)), max(most[1], sum(window))
    return most


# -- measuring -------------------------------------------------------------------------------


def timed(fn: Callable[[], pd.DataFrame], n: int, repeat: int) -> float:
    """Median seconds of ``repeat`` runs; each must deliver all n rows.

    Each run's time ends with a collection of the young generations (``gc.collect(1)``): nbws
    pauses the collector while it works (``nbws.collector``), so what it keeps is still young
    when it returns, and the walk through the middle generation that the plain loops pay during
    their run would otherwise fall on whatever runs next (on book diffs ~0.25 s).
    """
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        frame = fn()
        gc.collect(1)
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
warm = nbws.store.MessageStore(chunk_size=1)  # imports pandas before the baseline
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
def nested(value):
    # what pandas' deep memory_usage leaves out: the lists and strings inside a list or dict cell
    todo, size = list(value.values() if isinstance(value, dict) else value), 0
    while todo:
        item = todo.pop()
        size += sys.getsizeof(item)
        if isinstance(item, (list, dict)):
            todo.extend(item.values() if isinstance(item, dict) else item)
    return size
cells = [v for c in frame.columns if frame[c].dtype == object for v in frame[c]]
deep = frame.memory_usage(deep=True).sum() + sum(nested(v) for v in cells if isinstance(v, (list, dict)))
print(peak, deep / 2**20, len(frame), samples)
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


def panel_in_kernel(url: str, seconds: float, chart: bool = False) -> tuple[float, float, int, int]:
    """A kernel shows the panel of a full-speed stream (and with ``chart``, a live chart of its
    prices by symbol too); meanwhile trivial cells run.

    Returns (p50, p95 round trip of a trivial cell in seconds, busiest second's widget
    updates on IOPub of the panel (and of the chart, counted apart), messages received by then).
    """
    import tempfile

    sys.path.insert(0, str(HERE.parent / "tests"))
    from kernel import Kernel

    kernel = Kernel(Path(tempfile.mkdtemp()))
    try:
        shown = "display(ws, ws.plot('px', by='sym'))" if chart else "ws"
        kernel.wait([kernel.submit(f"import nbws\nws = nbws.connect({url!r}, name='fast')\n{shown}")])
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
    busiest = 0
    for method in ("update", "custom"):  # the panel's trait updates; the chart's points
        updates = [
            (m["header"]["date"].timestamp(), 0)
            for m in kernel.iopub
            if m["msg_type"] == "comm_msg" and m["content"]["data"].get("method") == method
        ]
        busiest = max(busiest, busiest_second(updates)[0])
    trips.sort()
    return trips[len(trips) // 2], trips[int(len(trips) * 0.95)], busiest, received


def start_server(n: int, shape: str = "small") -> tuple[multiprocessing.Process, str]:
    ready: multiprocessing.Queue = multiprocessing.get_context("spawn").Queue()
    proc = multiprocessing.get_context("spawn").Process(target=serve, args=(n, ready, shape), daemon=True)
    proc.start()
    return proc, f"ws://127.0.0.1:{ready.get(timeout=120)}/"


IMPORT_PROBE = """
import sys, time
start = time.perf_counter()
import nbws
print(time.perf_counter() - start, "pandas" in sys.modules)
"""


def import_time() -> tuple[float, bool]:
    """Seconds ``import nbws`` takes in a fresh interpreter (best of 3), and whether it loaded pandas."""
    runs = []
    for _ in range(3):
        out = subprocess.run([sys.executable, "-c", IMPORT_PROBE], capture_output=True, text=True, check=True)
        seconds, pandas_loaded = out.stdout.split()
        runs.append((float(seconds), pandas_loaded == "True"))
    return min(runs)


def shape_cases(
    url: str, n: int, binary: bool, repeat: int
) -> tuple[dict[str, float], tuple[int, int], dict[str, tuple[float, float]]]:
    """Median seconds per case for one shape, the panel's busiest second (updates, bytes), and
    per case the median number of CPython's full collections and their seconds.

    The cases take turns, round after round, so that a slow spell of a shared machine falls on
    all of them rather than on whichever ran then, each round in another order.
    """
    cases = {
        "A": lambda: case_a(url, n, binary),
        "B": lambda: case_b(url, n, binary),
        "D": lambda: case_d(url, n, binary),
        "D'": lambda: case_d(url, n, binary, "listener"),
        'D"': lambda: case_d(url, n, binary, "panel"),
        "E": lambda: case_e(url, n, binary),
        "F": lambda: case_d(url, n, binary, "archive"),
    }
    if HAS_PICOWS:
        cases["G"] = lambda: case_d(url, n, binary, "picows")
        cases["H"] = lambda: case_h(url, n, binary)
    seconds: dict[str, list[float]] = {key: [] for key in cases}
    full: dict[str, list[tuple[int, float]]] = {key: [] for key in cases}
    busiest = (0, 0)
    collections = Collections()
    gc.callbacks.append(collections)
    for round_ in range(repeat):
        # A case's time depends on the one before it (the heap that one freed; measured: nbws
        # right after the plain loop ~15% slower on mixed than right after another nbws case),
        # so each round has its own order (the same in every run) and no case always follows
        # the same one.
        order = list(cases)
        random.Random(round_).shuffle(order)
        for key in order:
            case = cases[key]
            WIDGET_UPDATES.clear()
            gc.collect()  # every case starts from the same heap, whatever the last one left
            collections.count, collections.seconds = 0, 0.0
            seconds[key].append(timed(case, n, 1))
            full[key].append((collections.count, collections.seconds))
            remove_archives()
            if key == 'D"':
                wait_for_the_panel_to_stop()  # its last redraw, of the final state, counts too
                updates, size = busiest_second(WIDGET_UPDATES)
                busiest = max(busiest[0], updates), max(busiest[1], size)
                forget_the_panels()
    gc.callbacks.remove(collections)
    medians = {key: statistics.median(times) for key, times in seconds.items()}
    full_medians = {
        key: (statistics.median(c for c, _ in runs), statistics.median(s for _, s in runs))
        for key, runs in full.items()
    }
    return medians, busiest, full_medians


def archive_cost(url: str, n: int, binary: bool, pairs: int) -> tuple[float, list[float]]:
    """F / D as the median of ``pairs`` back-to-back D and F runs (each pair in the other order
    than the one before), and each pair's ratio.

    Seven interleaved rounds cannot tell a 10% cost from noise here: a case's time depends on
    the case before it (see shape_cases) and F / D from them ranged 0.79-0.99 between runs of
    the same code on mixed feeds. Side by side, a slow spell or a heap left by another case
    falls on both halves of a pair.

    With 21 pairs the median was not precise enough for a 10% target: 21 pairs of D against D
    (the same code) gave medians of 0.92-1.02 on binary frames, each pair 0.61-1.71. With 41,
    the median's 95% interval (``median_interval``, which says how precise each run's figure
    is) was still 0.08-0.18 wide; 81 narrow it by about 1.4x, for ~7 more minutes.
    """
    ratios = []
    for pair in range(pairs):
        seconds = {}
        for key, variant in (("D", ""), ("F", "archive"))[:: 1 if pair % 2 == 0 else -1]:
            gc.collect()
            seconds[key] = timed(lambda variant=variant: case_d(url, n, binary, variant), n, 1)
            remove_archives()
        ratios.append(seconds["D"] / seconds["F"])
    return statistics.median(ratios), ratios


def median_interval(values: list[float], confidence: float = 0.95) -> tuple[float, float]:
    """A distribution-free interval for the median of what ``values`` sample: the order
    statistics ``k`` and ``n + 1 - k`` places from the ends, with the widest ``k`` whose
    binomial tail is at most ``(1 - confidence) / 2``."""
    ordered = sorted(values)
    n = len(ordered)
    tail, k = 0.0, 0
    while k < n // 2:
        tail += math.comb(n, k) / 2**n  # P(fewer than k + 1 values below the median)
        if tail > (1 - confidence) / 2:
            break
        k += 1
    k = max(k, 1)
    return ordered[k - 1], ordered[n - k]


CASE_NAMES = {
    "A": "A  websockets + orjson -> list -> DataFrame",
    "B": "B  websocket-client WebSocketApp -> list -> DataFrame",
    "D": "D  nbws connect -> ws.frame",
    "D'": "D' nbws with a message listener",
    'D"': 'D" nbws with the panel (dummy comm)',
    "E": "E  aiohttp + orjson -> list -> DataFrame",
    "F": "F  nbws with archive= (Parquet) -> ws.frame",
    "G": 'G  nbws transport="picows" -> ws.frame',
    "H": "H  picows + orjson -> list -> DataFrame",
}


def forget_the_panels() -> None:
    """Close the panel cases' widgets: ipywidgets keeps every open widget, so each panel (and its
    connection's messages) would stay in memory and make the next cases' garbage collections
    longer."""
    import ipywidgets

    ipywidgets.Widget.close_all()
    PANELS.clear()


def wait_for_the_panel_to_stop(timeout: float = 10.0) -> None:
    panel = PANELS[-1]
    deadline = time.monotonic() + timeout
    while panel.timer_running and time.monotonic() < deadline:
        time.sleep(0.01)


def versions() -> str:
    names = ["nbws", "websockets", "websocket-client", "aiohttp", "pandas", "pyarrow", "orjson", "ipywidgets"]
    found = [f"{name} {version(name)}" for name in names]
    return ", ".join([*found[:2], f"picows {version('picows')}" if HAS_PICOWS else "no picows", *found[2:]])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a small smoke run; writes no RESULTS.md")
    parser.add_argument(
        "--messages", type=int, help=f"messages per case for every shape (quick {QUICK_COUNT:,})"
    )
    parser.add_argument(
        "--repeat", type=int, help="rounds of every case, median reported (default 7; quick 1)"
    )
    parser.add_argument("--shapes", nargs="+", choices=list(SHAPES), default=list(SHAPES))
    args = parser.parse_args(argv)
    repeat = args.repeat or (1 if args.quick else 7)
    pairs = 1 if args.quick else ARCHIVE_PAIRS
    lines: list[str] = []
    count_widget_updates()

    def say(line: str = "") -> None:
        print(line, flush=True)
        lines.append(line)

    say(f"# nbws benchmarks: every message shape, median of {repeat} interleaved rounds")
    say()
    say(f"{platform.platform()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    say(versions())
    say()
    summary = []
    for shape in args.shapes:
        n = args.messages or (QUICK_COUNT if args.quick else COUNTS[shape])
        payloads = SHAPES[shape](min(n, 1_000))
        binary = is_binary(payloads[0])
        mean = sum(map(len, payloads)) / len(payloads)
        proc, url = start_server(n, shape)
        try:
            results, (updates, size), full = shape_cases(url, n, binary, repeat)
            archive_ratio, pair_ratios = archive_cost(url, n, binary, pairs)
            if shape == "small":
                results["C"] = case_c(url, n, args.quick)
        finally:
            proc.terminate()
        a, d = results["A"], results["D"]
        say(f"## {shape}: {SHAPES[shape].__doc__.splitlines()[0]} (mean {mean:,.0f} B, {n:,} messages)")
        say()
        say("| case | msgs/s | seconds | vs A | full collections | their seconds |")
        say("|---|---:|---:|---:|---:|---:|")
        for key, seconds in sorted(results.items()):
            name = (
                CASE_NAMES.get(key)
                or f"C  one pd.concat per message (first {min(n, 10_000):,}, extrapolated)"
            )
            count, gc_seconds = (f"{full[key][0]:g}", f"{full[key][1]:.3f}") if key in full else ("", "")
            speed = f"{n / seconds:,.0f} | {seconds:.3f} | {a / seconds:.2f}"
            say(f"| {name} | {speed} | {count} | {gc_seconds} |")
        ratios = (
            a / d,
            a / results["D'"],
            d / results['D"'],
            archive_ratio,
            results["B"] / d,
            results["E"] / d,
            results["H"] / results["G"] if "G" in results else math.nan,
            results["E"] / results["G"] if "G" in results else math.nan,
        )
        say()
        say(
            f"D / A = {ratios[0]:.2f} (target >= 0.85); D' / A = {ratios[1]:.2f} (target >= 0.8); "
            f'D" / D = {ratios[2]:.2f} (target >= 0.9); F / D = {ratios[3]:.2f} (target >= 0.9); '
            f"D / B = {ratios[4]:.2f}; D / E = {ratios[5]:.2f}; G / H = {ratios[6]:.2f} (target >= 0.85); "
            f"G / E = {ratios[7]:.2f}{' (target >= 1.0)' if shape == 'small' else ''}; "
            f"panel's busiest second: {updates} widget updates, {size / 1000:,.1f} KB "
            "(targets <= 20, <= 100 KB)"
        )
        low, high = median_interval(pair_ratios)
        say(
            f"F / D above: the median of {pairs} back-to-back pairs of D and F runs, 95% interval "
            f"{low:.2f}-{high:.2f} (in the interleaved rounds' medians: {d / results['F']:.2f}); "
            f"the pairs' ratios ranged {min(pair_ratios):.2f}-{max(pair_ratios):.2f}"
        )
        say()
        met = (
            ratios[0] >= 0.85
            and ratios[1] >= 0.8
            and ratios[2] >= 0.9
            and ratios[3] >= 0.9
            and not ratios[6] < 0.85  # (NaN without picows: not measured, not counted)
            and not (shape == "small" and ratios[7] < 1.0)
            and updates <= 20
            and size <= 100_000
        )
        summary.append((shape, mean, *ratios[:4], ratios[6], ratios[7], updates, size, met))
    say("## Targets per shape (same run)")
    say()
    say(
        "| shape | mean size | D / A (>= 0.85) | D' / A (>= 0.8) | D\" / D (>= 0.9) | F / D (>= 0.9) "
        "| G / H (>= 0.85) | G / E (small >= 1.0) | panel updates/s (<= 20) | panel KB/s (<= 100) | all met |"
    )
    say("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|")
    for shape, mean, da, dla, dpd, fd, gh, ge, updates, size, met in summary:
        say(
            f"| {shape} | {mean:,.0f} B | {da:.2f} | {dla:.2f} | {dpd:.2f} | {fd:.2f} | {gh:.2f} | {ge:.2f} "
            f"| {updates} | {size / 1000:,.1f} | {'yes' if met else 'NO'} |"
        )
    say()
    seconds, pandas_loaded = import_time()
    say(
        f"import nbws: {seconds:.3f} s (best of 3, fresh interpreter; target <= 0.2 s); pandas loaded by it: "
        f"{'yes' if pandas_loaded else 'no'} (target: no)"
    )
    say()
    others(args.quick, say)
    if not args.quick:
        (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")
    return 0


def case_c(url: str, n: int, quick: bool) -> float:
    """Seconds case C would take for all n messages, extrapolated from its first rows."""
    stop_after = min(n, 1_000 if quick else 10_000)
    concat_time, half_time = case_c_rows(url, n, stop_after)
    # t(k) = a*k + b*k^2 through (k/2, half) and (k, full), extrapolated to n
    k = stop_after
    b = (concat_time - 2 * half_time) / (k * k / 2) if k > 1 else 0.0
    a = (concat_time - b * k * k) / k
    return max(a * n + b * n * n, concat_time)


def read_archive(shape: str, n: int, repeat: int = 3) -> tuple[float, float, float]:
    """Median seconds to build ws.frame for n messages of ``shape`` from the socket (case D,
    archiving them meanwhile), from the same messages fed to a store with no socket, and to read
    the archive back with nbws.read (checked equal to the frame)."""
    import nbws
    from nbws.store import MessageStore

    frames = []
    proc, url = start_server(n, shape)
    try:
        streamed = timed(lambda: frames.append(case_d(url, n, variant="archive")) or frames[-1], n, repeat)
    finally:
        proc.terminate()
    folder, frame = ARCHIVES[-1], frames[-1]
    texts = [m.decode() for m in SHAPES[shape](n)]

    def stored() -> pd.DataFrame:
        store = MessageStore()
        for i, text in enumerate(texts):
            store.append(text, i)
        return store.frame()

    store_seconds = timed(stored, n, repeat)
    read_seconds = timed(lambda: nbws.read(folder), n, repeat)
    assert nbws.read(folder).equals(frame), "the archive does not read back as the frame"
    remove_archives()
    return streamed, store_seconds, read_seconds


def others(quick: bool, say: Callable[[str], None]) -> None:
    """The frame's refresh cost, memory, the panel in a kernel and the max_rows soak."""
    n = 5_000 if quick else 200_000
    sizes = [1_000, 10_000] if quick else [10_000, 100_000, 1_000_000]
    say("ws.frame again after 1,000 new messages (target: proportional to the new rows)")
    say("")
    say("| rows held | median seconds | worst seconds |")
    say("|---:|---:|---:|")
    for held, median, worst in refresh_curve(sizes):
        say(f"| {held:,} | {median:.4f} | {worst:.4f} |")
    say("")
    read_n = 20_000 if quick else 1_000_000
    say(f"nbws.read of {read_n:,} archived rows against building ws.frame for them (median of 3)")
    say("")
    say(
        "| shape | rows | ws.frame from the socket, archiving (F) | the store alone, no socket "
        "| nbws.read | read / F |"
    )
    say("|---|---:|---:|---:|---:|---:|")
    for shape, rows in (("small", read_n), ("book", read_n // 10), ("mixed", read_n // 5)):
        streamed, stored, read = read_archive(shape, rows)
        say(
            f"| {shape} | {rows:,} | {streamed:.2f} s | {stored:.2f} s | {read:.2f} s "
            f"| {read / streamed:.2f} |"
        )
    say("")
    say("(target, on the small shape: read / F <= 1.0)")
    say("")
    for shape in ("small", "book", "mixed"):
        shape_n = n if shape == "small" else n // 4
        proc, url = start_server(shape_n, shape)
        try:
            peak, frame_mb, rows, _ = memory(url, shape_n, None)
        finally:
            proc.terminate()
        say(
            f"memory, {shape}: peak growth {peak:.0f} MB while streaming {shape_n:,} messages; final frame "
            f"{frame_mb:.0f} MB deep, nested lists included (target: peak <= 2 x frame + 50 MB = "
            f"{2 * frame_mb + 50:.0f} MB)"
        )
    say("")
    panel_n = 50_000 if quick else 1_500_000
    panel_proc, panel_url = start_server(panel_n)
    try:
        p50, p95, busiest, received = panel_in_kernel(panel_url, 2 if quick else 6)
    finally:
        panel_proc.terminate()
    say(
        f"panel displayed in a kernel, full-speed stream ({received:,} messages in): a trivial cell's "
        f"round trip p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms (target <= 50 ms); busiest "
        f"second {busiest} widget updates on IOPub (target <= 20)"
    )
    chart_proc, chart_url = start_server(panel_n)
    try:
        p50, p95, busiest, received = panel_in_kernel(chart_url, 2 if quick else 6, chart=True)
    finally:
        chart_proc.terminate()
    say(
        f"panel and live chart (px by sym) displayed in a kernel, full-speed stream ({received:,} "
        f"messages in): a trivial cell's round trip p50 {p50 * 1000:.0f} ms, p95 {p95 * 1000:.0f} ms "
        f"(target <= 50 ms); busiest second {busiest} updates of either on IOPub (target <= 20 each)"
    )
    most = 100_000 if quick else 1_000_000
    sizes = chart_bytes.measure(most)
    (few, few_updates), (many, many_updates) = sizes[10], sizes[most]
    say(
        f"live chart, bytes of the updates carrying 600 new points (60 rows of 10 columns): holding 10 "
        f"points {few:,} B in {few_updates} update(s), holding {most:,} points {many:,} B in "
        f"{many_updates} update(s): {many / few:.2f}x (target: within 1.5x)"
    )
    soak_n, soak_rows = (50_000, 5_000) if quick else (2_000_000, 100_000)
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


if __name__ == "__main__":
    sys.exit(main())
