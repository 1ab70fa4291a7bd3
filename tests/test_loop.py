"""nbws.loop: one background thread and loop for every connection."""

from __future__ import annotations

import asyncio
import json
import queue
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest

import nbws
import nbws.demo
import nbws.loop

from kernel import Kernel


def test_one_daemon_thread_shared_by_all_connections(demo):
    """Connections share one daemon loop thread that is not the caller's thread."""
    seen = queue.Queue()

    def where(event):
        seen.put((threading.current_thread(), asyncio.get_running_loop()))

    for _ in range(2):
        nbws.connect(demo.url + "/echo").add_event_listener("open", where)
    (thread_a, loop_a), (thread_b, loop_b) = seen.get(timeout=5), seen.get(timeout=5)
    threads = [t for t in threading.enumerate() if t.name == "nbws-loop"]
    assert threads == [thread_a] == [thread_b]
    assert threads[0].daemon
    assert loop_a is loop_b is nbws.loop.get_loop()


def test_never_the_callers_event_loop(demo):
    """Connecting from async code does not put the connection on the caller's loop."""

    seen = queue.Queue()

    async def main():
        ws = nbws.connect(demo.url + "/echo")
        ws.add_event_listener("open", lambda event: seen.put(asyncio.get_running_loop()))
        return ws, asyncio.get_running_loop()

    ws, caller_loop = asyncio.run(main())
    ws.wait_open(5)
    assert seen.get(timeout=5) is not caller_loop
    ws.send("still works after the caller's loop is gone")
    assert ws.recv(timeout=5).data.startswith("still works")


def test_in_loop_thread():
    """in_loop_thread is True only on the loop thread."""
    assert not nbws.loop.in_loop_thread()
    result = nbws.loop.submit(_ask()).result(5)
    assert result is True


async def _ask():
    return nbws.loop.in_loop_thread()


def test_interpreter_exit_closes_connections_cleanly(demo):
    """A script that exits with an open connection closes it (1001-free, clean) and does not hang."""
    code = textwrap.dedent(
        f"""
        import nbws
        ws = nbws.connect({demo.url + "/echo"!r}).wait_open(5)
        ws.on("close")(lambda e: print("closed", e.code, e.was_clean, flush=True))
        print("open", flush=True)
        """
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["open", "closed", "1000", "True"]
    assert result.stderr == ""


# -- soak: no growth in threads, file descriptors or memory --------------------------------------

SOAK_ROUNDS = 8  # about 1.5 s each here: a fixed count, so a busy machine runs the same soak
# Allocators keep freed pages and Python's arenas fragment, so RSS drifts a few MB even when
# nothing leaks (about 2-3 MB over the second half here). A leak of what a round allocates (one
# 10,000-row store, 50,000 messages, a DataFrame: several MB) would pass this bound in a few
# rounds; jitter would not. Threads and file descriptors have no such noise: they must be flat.
SOAK_RSS_GROWTH_MB = 30

SOAK_SCRIPT = """
import gc, json, os, socket, sys, threading, time, weakref
import nbws

base, rounds_to_run = sys.argv[1], int(sys.argv[2])
page = os.sysconf("SC_PAGE_SIZE")


def sample(n):
    with open("/proc/self/statm") as f:
        rss_mb = int(f.read().split()[1]) * page / 2**20
    return {
        "round": n,
        "threads": threading.active_count(),
        "os_threads": len(os.listdir("/proc/self/task")),  # native ones too (pyarrow's pools)
        "fds": len(os.listdir("/proc/self/fd")),
        "rss_mb": round(rss_mb, 1),
    }


probe = socket.socket()
probe.bind(("127.0.0.1", 0))
refused = f"ws://127.0.0.1:{probe.getsockname()[1]}/"  # nothing listens there once closed
probe.close()
samples = [sample(0)]
rounds, errors = [], []
for r in range(1, rounds_to_run + 1):
    ws = nbws.connect(base + "/ticker?rate=0&count=50000", max_rows=10_000)
    assert ws.wait_closed(120).code == 1000, ws
    assert ws.stats["received"] == 50_000 and len(ws.frame) == 10_000, ws.stats
    rounds.append(weakref.ref(ws))
    for _ in range(5):
        short = nbws.connect(base + "/echo").wait_open(10)
        short.send("hi")
        assert short.recv(timeout=10).data == "hi"
        short.close()
        try:
            nbws.connect(refused).wait_open(10)
            raise AssertionError("connected to a closed port")
        except nbws.ConnectError:
            pass
        drop = nbws.connect(base + "/drop?after=100", reconnect=False)
        drop.add_event_listener("error", errors.append)  # heard, so not printed
        assert drop.wait_closed(10).code == 1006 and drop.stats["received"] == 100
    del ws, short, drop
    freed_by_refcount = sum(w() is None for w in rounds)
    gc.collect()
    s = sample(r)
    s["live_ws"] = sum(w() is not None for w in rounds)  # the big streams of earlier rounds
    s["freed_without_gc"] = freed_by_refcount
    samples.append(s)
assert len(errors) == 5 * (len(samples) - 1), len(errors)
assert not nbws.connections(), nbws.connections()
print(json.dumps(samples))
"""


@pytest.mark.timeout(300)
def test_soak_threads_fds_and_memory_stay_flat(demo):
    """Eight rounds of fast streams (max_rows), short, refused and dropped connections in a fresh
    interpreter: after the first round (which starts the loop thread) threads and file
    descriptors never grow, earlier connections are freed, and RSS stays within a bound."""
    run = subprocess.run(
        [
            sys.executable,
            "-c",
            SOAK_SCRIPT,
            demo.url,
            str(SOAK_ROUNDS),
        ],
        capture_output=True,
        text=True,
        timeout=280,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    assert run.stderr == ""  # no unheard error, no traceback
    samples = json.loads(run.stdout.splitlines()[-1])
    print("\nsoak: round, Python threads, OS threads, fds, RSS MB, streams freed by refcount / still alive")
    for s in samples:
        print(
            f"  {s['round']:3d} {s['threads']:3d} {s['os_threads']:3d} {s['fds']:4d} {s['rss_mb']:7.1f}"
            f"  {s.get('freed_without_gc', '-')} / {s.get('live_ws', '-')}"
        )
    assert len(samples) - 1 == SOAK_ROUNDS
    before, first, rest = samples[0], samples[1], samples[3:]
    assert first["threads"] == before["threads"] + 1  # the loop thread, started once
    # Two rounds to warm up: pyarrow starts its native thread pool when it first needs it.
    os_threads = max(samples[1]["os_threads"], samples[2]["os_threads"])
    for s in rest:
        assert s["threads"] <= first["threads"], s
        assert s["os_threads"] <= os_threads, s
        assert s["fds"] <= first["fds"], s
    assert all(s["live_ws"] == 0 for s in samples[1:]), samples
    second_half = [s["rss_mb"] for s in samples[1 + (len(samples) - 1) // 2 :]]
    assert max(second_half) - second_half[0] < SOAK_RSS_GROWTH_MB, second_half


# -- exit: connections left open when the interpreter or the kernel ends --------------------------


class RecordingDemo(nbws.demo.DemoServer):
    """The demo server, noting for each connection how it ended: (path, close code, reason).

    The code is the one in the client's close frame, or 1006 when the TCP connection ended
    without one (a killed process).
    """

    def __init__(self) -> None:
        self.ended: queue.Queue[tuple[str, int, str]] = queue.Queue()
        super().__init__()

    async def handle(self, connection) -> None:
        try:
            await super().handle(connection)
        finally:
            await connection.wait_closed()
            rcvd = connection.protocol.close_rcvd
            path = urlsplit(connection.request.path).path
            self.ended.put((path, 1006, "") if rcvd is None else (path, int(rcvd.code), rcvd.reason))


@pytest.fixture
def recording_demo() -> Iterator[RecordingDemo]:
    server = RecordingDemo()
    yield server
    server.close()


def _silent_port(servers) -> tuple[int, queue.Queue, threading.Event]:
    """A TCP port that accepts and never answers the handshake; the event is set once the
    client's request arrived; the queue gets what the client sent after that once it hung up
    (EOF), or None if it was still connected after 60 s."""
    hung_up: queue.Queue[bytes | None] = queue.Queue()
    requested = threading.Event()

    async def on_connect(reader, writer):
        try:
            await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 60)
            requested.set()
            hung_up.put(await asyncio.wait_for(reader.read(), 60))
        except (TimeoutError, ConnectionError):
            hung_up.put(None)
        finally:
            writer.close()

    return servers.tcp(on_connect), hung_up, requested


EXIT_SCRIPT = """
import atexit, sys, threading

# Registered before nbws is imported, so it runs after nbws's own exit handler (atexit is LIFO).
atexit.register(lambda: print("threads at exit:", *sorted(t.name for t in threading.enumerate()), flush=True))

import nbws

stream = nbws.connect(sys.argv[1] + "/ticker?rate=100", name="stream").wait_open(10)
stream.wait_for_messages(5, timeout=10)
stuck = nbws.connect(f"ws://127.0.0.1:{sys.argv[2]}/", name="stuck", open_timeout=60)  # never answered
print("states:", stream.ready_state.name, stuck.ready_state.name, flush=True)
sys.stdin.readline()  # the test answers once the stuck handshake's request has arrived
"""


@pytest.mark.timeout(60)
def test_script_exit_with_a_stream_and_a_pending_handshake(recording_demo, servers):
    """A script that ends with a stream open and a handshake pending exits at once with 0, no
    traceback and no thread left; the server gets a close frame and the silent port an EOF."""
    port, hung_up, requested = _silent_port(servers)
    script = subprocess.Popen(
        [sys.executable, "-c", EXIT_SCRIPT, recording_demo.url, str(port)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert requested.wait(20)
    stdout, stderr = script.communicate("go\n", timeout=20)  # a bound on a hang, not a speed target
    run = subprocess.CompletedProcess(script.args, script.returncode, stdout, stderr)
    print(f"\nexit code {run.returncode}\nstdout: {run.stdout!r}\nstderr: {run.stderr!r}")
    assert run.returncode == 0, run.stderr
    # No traceback, no "Task was destroyed" or "Exception ignored", and nothing about the
    # abandoned handshake: nbws closed it because the interpreter is ending.
    assert run.stderr == ""
    assert run.stdout.splitlines() == ["states: OPEN CONNECTING", "threads at exit: MainThread"]
    ended = recording_demo.ended.get(timeout=10)
    print("the server saw the stream end with:", ended)
    assert ended in (("/ticker", 1000, ""), ("/ticker", 1001, ""))
    assert hung_up.get(timeout=10) == b""  # then the pending handshake hung up


@pytest.mark.timeout(120)
def test_kernel_shutdown_closes_connections(recording_demo, servers, tmp_path, capfd):
    """A kernel shut down (not killed) with a stream open and a handshake pending: the process
    ends by itself, nbws's exit handler closes the stream with a close frame and joins its thread."""
    port, hung_up, requested = _silent_port(servers)
    report = tmp_path / "at-exit.txt"
    ticker = recording_demo.url + "/ticker?rate=100"
    kernel = Kernel(tmp_path)
    process = kernel.manager.provisioner.process
    try:
        out = kernel.run(
            "import atexit, threading\n"
            # before nbws is imported: runs after nbws's exit handler (atexit is LIFO)
            f"atexit.register(lambda: open({str(report)!r}, 'w').write("
            "' '.join(sorted(t.name for t in threading.enumerate()))))\n"
            "import nbws\n"
            f"stream = nbws.connect({ticker!r}, name='stream').wait_open(10)\n"
            "stream.wait_for_messages(5, timeout=10)\n"
            f"stuck = nbws.connect('ws://127.0.0.1:{port}/', name='stuck', open_timeout=60)\n"
            "print(stream.ready_state.name, stuck.ready_state.name)"
        )
        assert out.split() == ["OPEN", "CONNECTING"]
        assert requested.wait(20)
    finally:
        kernel.shutdown()  # shutdown_kernel(now=False): a shutdown request, SIGKILL only after 5 s
    assert not kernel.manager.is_alive()
    stderr = capfd.readouterr().err  # the kernel process writes to the test's own stderr
    with capfd.disabled():
        print(f"\nkernel exit code: {process.poll()}; threads at its exit: {report.read_text()!r}")
        print(f"kernel stderr: {stderr!r}")
    assert "Traceback" not in stderr and "Exception ignored" not in stderr
    assert process.poll() == 0  # exited by itself: not terminated or killed by jupyter_client
    threads = report.read_text().split()  # the kernel's own (IOPub, Heartbeat...) may still run
    assert "MainThread" in threads and "nbws-loop" not in threads  # atexit ran; the loop thread joined
    ended = recording_demo.ended.get(timeout=10)
    with capfd.disabled():
        print("the server saw the stream end with:", ended)
    assert ended in (("/ticker", 1000, ""), ("/ticker", 1001, ""))
    assert hung_up.get(timeout=10) == b""
