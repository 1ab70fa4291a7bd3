"""The nbws package: public namespace and core purity."""

from __future__ import annotations

import subprocess
import sys

import nbws


def test_importing_nbws_leaves_ipython_ipywidgets_traitlets_out():
    """Core never imports IPython, ipywidgets or traitlets (checked in a fresh interpreter)."""
    code = (
        "import sys, nbws, nbws.demo, nbws.cli, nbws.store, nbws.loop, nbws.redact, nbws.replay;"
        "ws = nbws.WebSocket('ws://127.0.0.1:9/');"
        "bad = [m for m in ('IPython', 'ipywidgets', 'traitlets', 'ipykernel', 'nest_asyncio')"
        " if m in sys.modules];"
        "print(bad)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_public_names():
    """The design's names are all there, in __all__."""
    for name in (
        "WebSocket connect connections close_all CONNECTING OPEN CLOSING CLOSED "
        "OpenEvent MessageEvent CloseEvent ErrorEvent NbwsError ConnectError "
        "ConnectionClosedError JSONDecodeError"
    ).split():
        assert name in nbws.__all__
        assert hasattr(nbws, name)
    assert (nbws.CONNECTING, nbws.OPEN, nbws.CLOSING, nbws.CLOSED) == (0, 1, 2, 3)
