"""nbws.loop: one background thread and loop for every connection."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
import threading

import nbws
import nbws.loop


def test_one_daemon_thread_shared_by_all_connections(demo):
    """Connections share one daemon loop thread that is not the caller's thread."""
    a = nbws.connect(demo.url + "/echo").wait_open(5)
    b = nbws.connect(demo.url + "/echo").wait_open(5)
    threads = [t for t in threading.enumerate() if t.name == "nbws-loop"]
    assert len(threads) == 1
    assert threads[0].daemon
    assert a._task.get_loop() is b._task.get_loop() is nbws.loop.get_loop()


def test_never_the_callers_event_loop(demo):
    """Connecting from async code does not put the connection on the caller's loop."""

    async def main():
        ws = nbws.connect(demo.url + "/echo")
        return ws, asyncio.get_running_loop()

    ws, caller_loop = asyncio.run(main())
    ws.wait_open(5)
    assert ws._task.get_loop() is not caller_loop
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
