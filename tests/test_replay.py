"""nbws.replay: ws.save(path) and nbws.replay(path, speed) serve a recording again."""

from __future__ import annotations

import json

import pytest

import nbws
from nbws.replay import read_recording


def record(demo, tmp_path, route: str):
    ws = nbws.connect(demo.url + route)
    ws.wait_closed(20)
    path = tmp_path / "feed.jsonl"
    return ws, path, ws.save(path)


def test_save_writes_json_lines_with_times(demo, tmp_path):
    """save() writes one JSON object a line: arrival time and data, binary as base64."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send('{"a": 1}')
    ws.send("plain")
    ws.send(b"\x00\xff")
    ws.wait_for_messages(3, timeout=5)
    path = tmp_path / "echo.jsonl"
    assert ws.save(path) == 3
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line.get("data") for line in lines] == ['{"a": 1}', "plain", None]
    assert lines[2]["data_base64"] == "AP8="
    assert lines[0]["t"] <= lines[1]["t"] <= lines[2]["t"]
    assert abs(lines[0]["t"] - ws.messages[0].received_at.timestamp()) < 1e-5


def test_replay_serves_the_same_messages_and_frame(demo, tmp_path):
    """A replayed feed gives the same messages, and so the same frame columns and values."""
    original, path, count = record(demo, tmp_path, "/ticker?rate=0&count=300")
    assert count == 300
    with nbws.replay(path, speed=0) as server:
        again = nbws.connect(server.url)
        close = again.wait_closed(20)
    assert (close.code, close.reason) == (1000, "end of recording")
    assert [m.data for m in again.messages] == [m.data for m in original.messages]
    assert list(again.frame.columns) == list(original.frame.columns)
    assert again.frame["seq"].tolist() == original.frame["seq"].tolist()


def test_replay_keeps_the_timing_divided_by_speed(demo, tmp_path):
    """speed=2 replays a one-second recording in about half a second."""
    ws, path, _ = record(demo, tmp_path, "/ticker?rate=20&count=21")
    recorded = ws.messages[-1].received_at - ws.messages[0].received_at
    assert 0.8 < recorded.total_seconds() < 1.5
    with nbws.replay(path, speed=2) as server:
        again = nbws.connect(server.url)
        again.wait_closed(10)
    replayed = again.messages[-1].received_at - again.messages[0].received_at
    assert 0.35 < replayed.total_seconds() < 0.9


def test_replay_binary_and_every_client(demo, tmp_path):
    """Binary messages come back as bytes; each client gets the whole recording."""
    ws = nbws.connect(demo.url + "/echo").wait_open(5)
    ws.send(b"\x01\x02")
    ws.send("text")
    ws.wait_for_messages(2, timeout=5)
    path = tmp_path / "mixed.jsonl"
    ws.save(path)
    with nbws.replay(path, speed=0) as server:
        clients = [nbws.connect(server.url) for _ in range(2)]
        for client in clients:
            client.wait_closed(10)
    assert [[m.data for m in c.messages] for c in clients] == [[b"\x01\x02", "text"]] * 2


def test_long_replay_shows_a_progress_bar(demo, tmp_path, capfd):
    """Long recordings show a tqdm bar while a client is served."""
    _, path, count = record(demo, tmp_path, "/ticker?rate=0&count=2500")
    with nbws.replay(path, speed=0, progress=True) as server:
        nbws.connect(server.url).wait_closed(20)
    # Leaving the block stopped the server, which waits for its handlers: the bar is closed.
    err = capfd.readouterr().err
    assert "replaying feed.jsonl" in err
    assert f"{count}/{count}" in err


def test_bad_recordings_are_refused_clearly(tmp_path):
    """A file that is not a recording names its first bad line; speed must not be negative."""
    path = tmp_path / "bad.jsonl"
    path.write_text('{"t": 1, "data": "ok"}\n{"nope": 1}\n')
    with pytest.raises(ValueError, match=r"line 2 of .*bad\.jsonl is not an nbws recording line"):
        nbws.replay(path)
    path.write_text('{"t": 1, "data": "ok"}\n')
    assert read_recording(path) == [(1.0, "ok")]
    with pytest.raises(ValueError, match="speed"):
        nbws.replay(path, speed=-1)
