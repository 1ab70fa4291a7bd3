"""``nbws record``: a real recorder process against servers on 127.0.0.1, read back with nbws.read.

The servers tell the tests what happened on their side (a subscription arrived, a batch was
sent, a closing handshake finished), so the tests act on those events, never on sleeps.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

import nbws
import nbws.demo
from nbws.archive import INCOMING_DIR, Archive

SUBSCRIBE = '{"op": "subscribe", "symbols": ["AAPL", "NVDA"]}'


def recorder(url: str, out: Path, *args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "nbws", "record", url, "--out", str(out), *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 60) -> tuple[int, str]:
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def wait_for(event: threading.Event, proc: subprocess.Popen, what: str, timeout: float = 30) -> None:
    if not event.wait(timeout):
        proc.kill()
        raise AssertionError(f"timed out waiting for {what}: {finish(proc)[1]}")


def poll_until(condition, what: str, proc: subprocess.Popen | None = None, timeout: float = 30) -> None:
    """Check ``condition()`` (a state of the archive, of a process) until it holds, bounded; a
    recorder that exited meanwhile fails at once with what it said."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"the recorder exited before {what}: {finish(proc)[1]}")
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def visible_files(out: Path) -> list[Path]:
    return list(out.glob("date=*/hour=*/*.parquet"))


def seqs(out: Path) -> list[int]:
    return nbws.read(out)["seq"].tolist()


def test_records_the_demo_market_with_its_subscription_until_sigterm(demo, tmp_path):
    """--send goes out on open; SIGTERM writes everything and exits 0 with a summary line."""
    watcher = nbws.connect(f"{demo.url}/chat")  # (unrelated client: the demo serves several)
    proc = recorder(f"{demo.url}/market?rate=400", tmp_path, "--send", SUBSCRIBE, "--rotate", "0.5")
    poll_until(lambda: visible_files(tmp_path), "a first rotation", proc)
    proc.send_signal(signal.SIGTERM)
    status, err = finish(proc)
    assert status == 0, err
    frame = nbws.read(tmp_path)
    assert frame["type"].iloc[0] == "subscribed" and frame["symbols"].iloc[0] == ["AAPL", "NVDA"]
    ticks = frame[frame["type"] == "tick"]
    assert set(ticks["symbol"]) == {"AAPL", "NVDA"} and ticks["seq"].tolist() == list(
        range(1, len(ticks) + 1)
    )
    summary = err.strip().splitlines()[-1]
    files = len(list(tmp_path.glob("date=*/hour=*/*.parquet")))
    assert summary == f"nbws record: stopped; {len(frame):,} rows in {files} files at {tmp_path}"
    assert "rows/s" in err and "0 reconnects" in err and "Traceback" not in err
    watcher.close()


def test_a_dropping_server_is_reconnected_and_resubscribed_without_lost_or_repeated_rows(servers, tmp_path):
    """The server cuts the connection (no close frame) after each batch and goes on where it
    stopped once the client subscribes again; the archive holds every row once, across files."""
    total, batch = 1500, 500
    state = {"next": 1, "subscriptions": 0, "connections": 0}

    async def handler(ws):
        state["connections"] += 1
        first, second = json.loads(await ws.recv()), json.loads(await ws.recv())
        assert (first["op"], second["op"]) == ("login", "subscribe")  # every --send, in order
        state["subscriptions"] += 1
        first = state["next"]
        state["next"] = last = min(first + batch, total + 1)
        for seq in range(first, last):
            await ws.send(json.dumps({"seq": seq, "px": seq / 10}))
        if last > total:
            await ws.close(1000, "end of feed")
        else:
            ws.transport.write_eof()  # every row sent arrives, then the cut (the client sees 1006)
            await ws.wait_closed()

    url = servers.websocket(handler)
    login = '{"op": "login", "user": "demo"}'
    proc = recorder(url, tmp_path, "--send", login, "--send", SUBSCRIBE, "--rotate", "0.2")
    status, err = finish(proc, timeout=90)
    assert status == 0, err
    assert seqs(tmp_path) == list(range(1, total + 1))
    assert state["connections"] == state["subscriptions"] == 3
    assert "2 reconnects" in err and "the server ended the stream (1000 end of feed)" in err
    assert len(list(tmp_path.glob("date=*/hour=*/*.parquet"))) >= 2


def test_sigkill_leaves_only_readable_files_and_loses_at_most_the_open_one(servers, tmp_path):
    first_part, second_part = 2000, 2000
    first_sent, go_on, second_sent = threading.Event(), threading.Event(), threading.Event()

    async def handler(ws):
        await ws.recv()
        for seq in range(1, first_part + 1):
            await ws.send(json.dumps({"seq": seq}))
        first_sent.set()
        await asyncio.get_running_loop().run_in_executor(None, go_on.wait, 60)
        for seq in range(first_part + 1, first_part + second_part + 1):
            await ws.send(json.dumps({"seq": seq}))
        second_sent.set()
        await ws.wait_closed()

    proc = recorder(servers.websocket(handler), tmp_path, "--send", SUBSCRIBE, "--rotate", "0.3")
    try:
        wait_for(first_sent, proc, "the first part")
        poll_until(
            lambda: visible_files(tmp_path) and len(seqs(tmp_path)) == first_part,
            "the first part in the archive",
            proc,
        )
        go_on.set()
        wait_for(second_sent, proc, "the second part")
    finally:
        proc.kill()  # SIGKILL: no handler runs
        proc.wait(30)
    assert proc.returncode == -signal.SIGKILL
    for file in tmp_path.glob("date=*/hour=*/*.parquet"):
        pq.read_table(file)  # every visible file is whole
    kept = seqs(tmp_path)
    assert kept == list(range(1, len(kept) + 1)) and first_part <= len(kept) <= first_part + second_part
    Archive(tmp_path)  # the next archive there removes what the dead one left half-written
    assert list((tmp_path / INCOMING_DIR).iterdir()) == []


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "Ctrl-C"])
def test_sigterm_and_ctrl_c_write_every_row_received_even_mid_rotation(servers, tmp_path, stop):
    """The rows wait in memory (a rotation an hour away); stopping must write them all."""
    count = 3000
    delivered = threading.Event()
    connections = []

    async def handler(ws):
        connections.append(ws)
        await ws.recv()
        if len(connections) == 1:
            for seq in range(1, count + 1):
                await ws.send(json.dumps({"seq": seq}))
            await ws.close(1001, "restarting")  # returns once the client answered: it has them all
            delivered.set()
        else:
            await ws.wait_closed()  # the reconnected recorder waits for more

    proc = recorder(servers.websocket(handler), tmp_path, "--send", SUBSCRIBE, "--rotate", "3600")
    wait_for(delivered, proc, "the closing handshake")
    assert list(tmp_path.glob("date=*/hour=*/*.parquet")) == []
    proc.send_signal(stop)
    status, err = finish(proc)
    assert status == 0, err
    assert seqs(tmp_path) == list(range(1, count + 1))


def test_headers_go_with_the_handshake(demo, tmp_path):
    """-H: the demo's /private wants a token; it echoes what the recorder sends on open."""
    token = f"Authorization: Bearer {nbws.demo.DEMO_TOKEN}"
    proc = recorder(f"{demo.url}/private", tmp_path, "-H", token, "--send", '{"hello": 1}', "--rotate", "0.2")
    poll_until(lambda: visible_files(tmp_path) and len(nbws.read(tmp_path)), "the echo in the archive", proc)
    proc.send_signal(signal.SIGTERM)
    status, err = finish(proc)
    assert status == 0, err
    assert nbws.read(tmp_path)["hello"].tolist() == [1]


@pytest.mark.parametrize(
    ("route", "args", "expected", "words"),
    [
        ("/ticker?rate=0&count=300", [], 0, "the server ended the stream (1000 end of ticker); 300 rows"),
        ("/ticker?rate=20", ["--duration", "0.5"], 0, "stopped after 0.5s"),
        ("/private", [], 3, "could not connect:"),
        ("/close?code=4000&reason=go+away&after=3", [], 4, "the connection closed with 4000 go away; 3 rows"),
        ("/drop?after=2", ["--no-reconnect"], 4, "the connection closed with 1006"),
    ],
    ids=["server ends", "duration", "401", "4000", "dropped, no reconnect"],
)
def test_exit_status_says_why_it_stopped(demo, tmp_path, route, args, expected, words):
    status, err = finish(recorder(demo.url + route, tmp_path, *args))
    assert status == expected, err
    assert words in err.strip().splitlines()[-1]
    assert "Traceback" not in err


def test_rows_it_could_not_write_make_the_exit_status_1(demo, tmp_path):
    today = time.strftime("date=%Y-%m-%d", time.gmtime())
    (tmp_path / today).write_text("a file where the archive needs a folder")
    status, err = finish(recorder(f"{demo.url}/ticker?rate=0&count=100", tmp_path))
    assert status == 1, err
    assert "could not write 100 rows to the archive" in err


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--send", "{not json"], "not valid JSON"),
        (["-H", "no colon"], "-H takes 'Name: value'"),
        (["--rotate", "0"], "--rotate and --duration take a positive number"),
    ],
)
def test_command_line_mistakes_exit_2_with_one_line(demo, tmp_path, args, words):
    status, err = finish(recorder(f"{demo.url}/echo", tmp_path, *args))
    assert status == 2 and words in err and "Traceback" not in err
    assert not tmp_path.joinpath("date=").exists()


def test_out_must_be_a_folder(demo, tmp_path):
    (tmp_path / "file").write_text("x")
    status, err = finish(recorder(f"{demo.url}/echo", tmp_path / "file"))
    assert status == 2 and "that is a file; give a folder" in err


def test_a_capture_outlives_a_kernel_restart_and_reads_back_whole(demo, tmp_path):
    """What a user does: start the recorder from a cell, restart the kernel, read it all back."""
    from kernel import Kernel

    out = tmp_path / "capture"
    kernel = Kernel(tmp_path / "kernel")
    try:
        started = kernel.run(
            "import subprocess, sys\n"
            "recorder = subprocess.Popen([sys.executable, '-m', 'nbws', 'record', "
            f"{demo.url + '/market?rate=300'!r}, '--out', {str(out)!r}, '--send', {SUBSCRIBE!r}, "
            "'--rotate', '0.3'], stderr=subprocess.DEVNULL, start_new_session=True)\n"
            "print('pid', recorder.pid)"
        )
        pid = int(started.split("pid")[-1])
        poll_until(lambda: visible_files(out), "the recorder's first file")
        kernel.client.stop_channels()
        kernel.manager.restart_kernel(now=False)
        kernel.client = kernel.manager.client()
        kernel.client.start_channels()
        kernel.client.wait_for_ready(timeout=60)
        said = kernel.run(f"import nbws\nprint('rows', len(nbws.read({str(out)!r})))")
        before = int(said.split("rows")[-1])
        poll_until(lambda: len(nbws.read(out)) > before, "more rows after the restart", timeout=60)
        os.kill(pid, signal.SIGTERM)
        poll_until(lambda: not _alive(pid), "the recorder to stop on SIGTERM", timeout=60)
        check = (
            f"frame = nbws.read({str(out)!r})\n"
            "ticks = frame[frame['type'] == 'tick']\n"
            "print('ticks', len(ticks), ticks['seq'].tolist() == list(range(1, len(ticks) + 1)))"
        )
        count, whole = kernel.run(check).split("ticks")[-1].split()
        assert whole == "True" and int(count) > before
    finally:
        kernel.shutdown()


def _alive(pid: int) -> bool:
    """Whether a process that is not our child still runs (a zombie waiting for init does not)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except (FileNotFoundError, ProcessLookupError):
        return False
    return state != "Z"
