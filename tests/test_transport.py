"""nbws.transport: the choice of transport, and what failed connections mean for the user."""

from __future__ import annotations

import sys

import pytest

import nbws
from nbws.transport import TRANSPORT_VARIABLE, Options, adapter

from recording import Recorder


def test_too_big_names_the_limit(servers):
    """1009 for size: the error names max_size and what to pass."""

    async def big(connection):
        await connection.send("y" * 5000)
        await connection.wait_closed()

    ws = nbws.connect(servers.websocket(big), max_size=1000)
    rec = Recorder(ws)
    rec.wait_closed(20)
    assert rec.last("close").code == 1009
    assert "max_size=1,000 bytes" in rec.last("error").message


def test_a_transport_is_chosen_by_name_or_nbws_transport_and_a_wrong_one_says_what_to_do(monkeypatch):
    url = "ws://127.0.0.1:9/"
    options = Options(url, url, [], None, 10.0, 20.0, 20.0, None, None)
    assert adapter("websockets", options).name == "websockets"
    monkeypatch.delenv(TRANSPORT_VARIABLE, raising=False)
    assert adapter(None, options).name == "websockets"
    with pytest.raises(ValueError, match=r"^transport must be one of 'websockets', 'picows', not 'pigeon'$"):
        adapter("pigeon", options)
    monkeypatch.setenv(TRANSPORT_VARIABLE, "pigeon")
    with pytest.raises(ValueError, match=r"not 'pigeon' \(from NBWS_TRANSPORT\)$"):
        nbws.connect(url)
    # Without picows installed (as at the floor, or without the extra): what to install.
    monkeypatch.setitem(sys.modules, "picows", None)
    monkeypatch.delitem(sys.modules, "nbws.picowstransport", raising=False)
    with pytest.raises(ImportError) as info:
        nbws.connect(url, transport="picows")
    assert str(info.value) == 'transport="picows" needs picows: pip install "nbws[fast]"'
