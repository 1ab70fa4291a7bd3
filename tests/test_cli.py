"""nbws.cli: the nbws command."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys

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
