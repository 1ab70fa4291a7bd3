"""nbws.cli: the nbws command."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import nbws


def test_serve_prints_its_url_and_serves():
    """`nbws serve --port 0` listens on loopback, prints the URL, and stops on Ctrl-C."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "nbws", "serve", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        line = proc.stdout.readline()
        match = re.search(r"ws://127\.0\.0\.1:(\d+)", line)
        assert match, line
        ws = nbws.connect(match.group(0) + "/echo").wait_open(5)
        ws.send("cli")
        assert ws.recv(timeout=5).data == "cli"
        ws.close()
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
    assert proc.returncode == 0


def test_serve_on_a_busy_port_says_so():
    """A port in use gives a one-line error and exit status 1."""
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = subprocess.run(
            [sys.executable, "-m", "nbws", "serve", "--port", str(port)],
            capture_output=True,
            text=True,
            timeout=30,
        )
    assert result.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port}" in result.stderr
    assert "Traceback" not in result.stderr


def test_console_script_help():
    """The installed `nbws` console script answers --help."""
    exe = os.path.join(os.path.dirname(sys.executable), "nbws")
    result = subprocess.run([exe, "--help"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 0
    assert "serve" in result.stdout


def test_tutorial_copies_the_notebooks_and_serves_them_over_http(tmp_path):
    """`nbws tutorial --dir D --port P --no-browser` answers over HTTP with the tutorials in D."""
    import json
    import time
    import urllib.request

    from lab import free_port

    port, token, folder = free_port(), "t0ken", tmp_path / "work"
    (folder).mkdir()
    (folder / "01-basics.ipynb").write_text("{}")  # a user's edited copy is kept
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "nbws",
            "tutorial",
            "--dir",
            str(folder),
            "--port",
            str(port),
            "--no-browser",
            f"--IdentityProvider.token={token}",
            "--ServerApp.ip=127.0.0.1",
            "--ServerApp.port_retries=0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                url = f"http://127.0.0.1:{port}/api/contents/?token={token}"
                with urllib.request.urlopen(url, timeout=2) as response:
                    listing = json.load(response)
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stdout.read()
                time.sleep(0.5)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            out, _ = proc.communicate(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
    names = sorted(item["name"] for item in listing["content"])
    shipped = sorted(p.name for p in (Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))
    assert names == shipped
    assert (folder / "01-basics.ipynb").read_text() == "{}"
    assert "keeping your copy of 01-basics.ipynb" in out
