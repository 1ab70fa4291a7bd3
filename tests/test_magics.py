"""nbws.magics: every %ws_* verb driven through a real IPython kernel against the demo server."""

from __future__ import annotations

import ast
import re

import pytest

from kernel import Kernel


@pytest.fixture(scope="module")
def k(tmp_path_factory, demo):
    kernel = Kernel(tmp_path_factory.mktemp("magics"))
    kernel.run(f"%load_ext nbws\nimport nbws\nURL = {demo.url!r}")
    yield kernel
    kernel.shutdown()


@pytest.fixture(autouse=True)
def _fresh(k):
    """Each test starts with no connection open in the kernel."""
    yield
    k.run("nbws.close_all()")


def value(k: Kernel, expression: str) -> str:
    return k.run(f"print({expression})").strip()


def nothing_else_was_sent(k: Kernel, name: str) -> list[str]:
    """Send a marker through the echo connection ``name`` and wait for it to come back.

    The echo server answers in order, so anything sent before the marker would be back before
    it: the messages returned are all that was ever echoed, with no sleep to guess how long.
    """
    k.run(f"%ws_send {name} --text marker\n%ws_wait {name} --timeout 10")
    return ast.literal_eval(value(k, f"[m.data for m in {name}.messages]"))


def plain(text: str) -> str:
    """``text`` without ANSI colours."""
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def test_load_twice_is_harmless_and_help_is_real(k):
    """%load_ext twice does no harm; %ws_connect? shows help generated from the arguments."""
    k.run("%load_ext nbws")
    msg_id = k.submit("%ws_connect?")
    k.wait([msg_id])
    reply = k.reply(msg_id)
    help_text = str(reply.get("payload")) + k.stream_text(msg_id)
    for word in ("--name", "--header", "--subprotocol", "--reconnect", "--max-rows", "--no-panel"):
        assert word in help_text


def test_connect_binds_the_name_and_shows_the_connection(k):
    """%ws_connect binds the connection to --name and displays it, open."""
    msg_id = k.submit("%ws_connect {URL}/echo --name feed")
    k.wait([msg_id])
    assert k.reply(msg_id)["status"] == "ok"
    shown = " ".join(k.displayed(msg_id))
    assert "'feed'" in shown and "OPEN" in shown
    assert value(k, "feed.ready_state.name, list(nbws.connections())") == "OPEN ['feed']"


def test_connect_default_name_and_dollar_expansion(k):
    """Without --name the variable is ws; $var expands in %ws_connect."""
    k.run("echo_url = URL + '/echo'\n%ws_connect $echo_url --no-panel")
    assert value(k, "ws.url == echo_url, ws.name") == "True ws"


def test_rerunning_the_connect_cell_replaces_the_connection(k):
    """The same cell run twice leaves exactly one live connection of that name."""
    cell = "%ws_connect {URL}/echo --name feed --no-panel"
    k.run(cell)
    k.run("first = feed")
    k.run(cell)
    assert value(k, "len(nbws.connections()), first.ready_state.name, feed is first") == "1 CLOSED False"


def test_headers_subprotocols_and_max_rows(k):
    """-H, --subprotocol and --max-rows reach the core."""
    k.run(
        "%ws_connect {URL}/private -H 'Authorization: Bearer demo-token' --subprotocol chat "
        "--max-rows 2 --name priv --no-panel"
    )
    k.run(
        "%ws_send priv --text a\n%ws_send priv --text b\n%ws_send priv --text c\n"
        "%ws_wait priv -n 3 --timeout 10"
    )
    assert value(k, "priv.max_rows, [m.data for m in priv.messages]") == "2 ['b', 'c']"


def test_transport_reaches_the_core_and_an_unknown_one_is_a_usage_error(k, transport):
    k.run(f"%ws_connect {{URL}}/echo --name fast --no-panel --transport {transport}")
    assert value(k, "fast.transport") == transport
    assert nothing_else_was_sent(k, "fast") == ["marker"]
    error = k.fail("%ws_connect {URL}/echo --name slow --no-panel --transport pigeon")
    assert error == "UsageError: %ws_connect: transport must be one of 'websockets', 'picows', not 'pigeon'"


def test_send_json_exactly_as_typed_without_expansion(k):
    """Braces and $ in the payload are not expanded; the JSON goes out as typed."""
    k.run("%ws_connect {URL}/echo --name feed --no-panel\nop = 'EXPANDED'")
    payload = '{"op": "subscribe", "channels": ["ticker"], "a": "{op}", "b": "$op"}'
    k.run(f"%ws_send feed {payload}\n%ws_wait feed --timeout 10")
    assert value(k, "feed.messages[-1].data") == payload


def test_send_implies_the_only_connection(k):
    """With one open connection the name can be left out."""
    k.run("%ws_connect {URL}/echo --no-panel")
    k.run('%ws_send {"x": 1}\n%ws_wait --timeout 10')
    assert value(k, "ws.frame['x'].tolist()") == "[1]"


def test_send_text_expr_and_cell(k):
    """--text sends raw text, --expr a Python value as JSON, %%ws_send a multi-line body."""
    k.run("%ws_connect {URL}/echo --name feed --no-panel\nquote = {'symbol': 'AAPL', 'qty': 3}")
    k.run("%ws_send feed --text hello {not json} $x")
    k.run("%ws_send feed --expr quote")
    k.run('%%ws_send feed\n{\n  "multi": [1,\n            2]\n}')
    k.run("%%ws_send feed --text\nline one\nline two")
    k.run("%ws_wait feed -n 4 --timeout 10")
    got = value(k, "[m.data for m in feed.messages]")
    assert got == (
        '[\'hello {not json} $x\', \'{"symbol":"AAPL","qty":3}\', '
        "'{\\n  \"multi\": [1,\\n            2]\\n}', 'line one\\nline two']"
    )


def test_invalid_json_is_refused_before_sending(k):
    """Bad JSON: a one-line UsageError with the parser's position; nothing is sent."""
    k.run("%ws_connect {URL}/echo --name feed --no-panel")
    error = k.fail('%ws_send feed {"op": subscribe}')
    assert error.startswith("UsageError: %ws_send: not valid JSON (Expecting value at line 1 column 8)")
    assert "nothing was sent" in error
    error = k.fail('%%ws_send feed\n{"a": 1,\n "b": }')
    assert "line 2 column 7" in error
    assert value(k, "feed.stats['sent']") == "0"
    assert nothing_else_was_sent(k, "feed") == ["marker"]


@pytest.mark.parametrize(
    "cell, where",
    [
        ('%ws_send feed {"x": NaN}', "NaN at line 1 column 7"),
        ("%ws_send feed Infinity", "Infinity at line 1 column 1"),
        ("%ws_send feed -Infinity", "-Infinity at line 1 column 1"),
        ("%ws_send NaN", "NaN at line 1 column 1"),
        ('%%ws_send feed\n{"a": [1,\n  -Infinity]}', "-Infinity at line 2 column 3"),
    ],
)
def test_nan_and_infinity_are_not_json(k, cell, where):
    """Python's json reads NaN and Infinity, JSON.parse does not: refused, nothing sent."""
    k.run("%ws_connect {URL}/echo --name feed --no-panel")
    error = k.fail(cell)
    assert error.startswith(f"UsageError: %ws_send: not valid JSON ({where}: JSON has no NaN or Infinity")
    assert "nothing was sent" in error
    assert nothing_else_was_sent(k, "feed") == ["marker"]


def test_nan_inside_a_string_is_json(k):
    """The words inside a JSON string are just text."""
    k.run("%ws_connect {URL}/echo --name feed --no-panel")
    payload = '{"note": "NaN and -Infinity", "big": 1e999}'
    k.run(f"%ws_send feed {payload}\n%ws_wait feed --timeout 10")
    assert value(k, "feed.messages[-1].data") == payload


def test_expr_value_json_cannot_hold_is_refused(k):
    """--expr with a value JSON cannot hold: one-line UsageError, nothing sent."""
    k.run("%ws_connect {URL}/echo --name feed --no-panel")
    error = k.fail("%ws_send feed --expr object()")
    assert error.startswith("UsageError: %ws_send: --expr 'object()' is not a value JSON can hold")
    assert "nothing was sent" in error
    assert "failed: NameError" in k.fail("%ws_send feed --expr no_such_name")
    assert nothing_else_was_sent(k, "feed") == ["marker"]


def test_user_errors_are_one_line_usage_errors(k):
    """Bad URL, unknown name, closed connection, bad close code, refused port, bad header."""
    assert "invalid WebSocket URL" in k.fail("%ws_connect http//nowhere --no-panel")
    assert "connection refused by 127.0.0.1:9" in k.fail("%ws_connect ws://127.0.0.1:9/ --no-panel")
    assert "each -H is 'Key: value'" in k.fail("%ws_connect {URL}/echo -H nocolon --no-panel")
    assert "--name must be a Python identifier" in k.fail("%ws_connect {URL}/echo --name 1x")
    k.run("%ws_connect {URL}/echo --name a --no-panel\n%ws_connect {URL}/echo --name b --no-panel")
    assert "no connection named 'c' (open: a, b)" in k.fail("%ws_send c {}")
    assert "several connections are open (a, b); name one" in k.fail("%ws_send {}")
    assert "close code must be 1000 or in 3000-4999" in k.fail("%ws_close a --code 1001")
    k.run("%ws_close a")
    assert "'a' to ws://127.0.0.1" in k.fail('%ws_send a {"late": true}')
    assert "is closed (code 1000)" in k.fail('%ws_send a {"late": true}')
    assert "No closing quotation" in k.fail("%ws_close b --reason 'unclosed")
    assert "nothing to send" in k.fail("%ws_send b")
    assert "count must be a positive integer" in k.fail("%ws_wait b -n 0")
    assert "close reason must be at most 123 bytes" in k.fail(f"%ws_close b --reason {'x' * 124}")
    assert "%%ws_send: the cell body is the payload" in k.fail("%%ws_send b {}\n{}")
    assert "--expr is for the line magic" in k.fail("%%ws_send b --expr x\n{}")


def test_wait_times_out_saying_how_many_arrived(k):
    """%ws_wait --timeout says how many of the messages came."""
    k.run("%ws_connect {URL}/ticker?rate=20&count=3 --name t --no-panel")
    error = k.fail("%ws_wait t -n 5 --timeout 1")
    assert error.startswith("UsageError: %ws_wait:")
    assert "of 5 new messages" in error


def test_wait_under_five_queued_cells(k):
    """Run All: five queued cells each send and wait; all reply in order."""
    k.run("%ws_connect {URL}/echo --name q --no-panel")
    ids = [
        k.submit(f"%ws_send q --text cell {i}\n%ws_wait q --timeout 10\nprint(q.messages[-1].data)")
        for i in range(5)
    ]
    k.wait(ids, timeout=60)
    assert [k.reply(i)["status"] for i in ids] == ["ok"] * 5
    assert [k.stream_text(i).strip() for i in ids] == [f"cell {i}" for i in range(5)]


def test_frame_and_list_return_dataframes(k):
    """df = %ws_frame NAME returns the frame; %ws_list returns a table of live connections."""
    k.run("%ws_connect {URL}/ticker?rate=0&count=20 --name t --no-panel\n%ws_wait t -n 20 --timeout 10")
    k.run("df = %ws_frame t")
    assert value(k, "type(df).__name__, len(df), 'book.bid' in df.columns") == "DataFrame 20 True"
    k.run("%ws_connect {URL}/echo --name e --no-panel")
    k.run("table = %ws_list")
    assert value(k, "list(table.index), list(table.columns)") == (
        "['e'] ['url', 'state', 'received', 'sent', 'msgs/s']"
    )


def test_frame_of_a_closed_connection(k):
    """The frame of a connection that has ended is still there, by name or implied."""
    k.run("%ws_connect {URL}/close?code=1000&after=3 --name done --no-panel\ndone.wait_closed(10)")
    k.run("df = %ws_frame done\ndf2 = %ws_frame")
    assert value(k, "len(df), len(df2), done.ready_state.name") == "3 3 CLOSED"


def test_close_with_code_reason_and_all(k):
    """%ws_close with --code/--reason; --all closes every connection."""
    k.run("%ws_connect {URL}/echo --name a --no-panel\n%ws_connect {URL}/echo --name b --no-panel")
    k.run("%ws_close a --code 4000 --reason 'bye now'")
    assert value(k, "a.wait_closed(5)") == "CloseEvent(code=4000, reason='bye now', was_clean=True)"
    k.run("%ws_close --all")
    assert value(k, "b.ready_state.name, nbws.connections()") == "CLOSED {}"


def test_panel_shows_the_connection_again(k):
    """%ws_panel displays the connection (its status until the panel exists)."""
    k.run("%ws_connect {URL}/echo --name p --no-panel")
    msg_id = k.submit("%ws_panel p")
    k.wait([msg_id])
    assert "'p'" in " ".join(k.displayed(msg_id))


def test_unload_closes_every_connection(k):
    """%unload_ext nbws closes every connection; loading again works."""
    k.run("%ws_connect {URL}/echo --name u --no-panel")
    k.run("%unload_ext nbws")
    assert value(k, "u.ready_state.name") == "CLOSED"
    k.run("%load_ext nbws")
    k.run("%ws_connect {URL}/echo --name u --no-panel")
    assert value(k, "u.ready_state.name") == "OPEN"


@pytest.mark.parametrize(
    "line, parsed",
    [
        ('{"a": 1}', (None, "json", '{"a": 1}')),
        ('feed {"a": 1}', ("feed", "json", '{"a": 1}')),
        ('  feed   {"a":  1}  ', ("feed", "json", '{"a":  1}')),
        ("feed  42", ("feed", "json", "42")),
        ("42", (None, "json", "42")),
        ("-1", (None, "json", "-1")),
        ("feed -1", ("feed", "json", "-1")),
        ("true", (None, "json", "true")),
        ("NaN", (None, "json", "NaN")),
        ("Infinity", (None, "json", "Infinity")),
        ("-Infinity", (None, "json", "-Infinity")),
        ("feed", ("feed", "json", "")),
        ("", (None, "json", "")),
        ('"feed"', (None, "json", '"feed"')),
        ('"--text"', (None, "json", '"--text"')),
        ("feed 'single'", ("feed", "json", "'single'")),
        (
            'feed {"cmd": "ls -la --all", "q": "it\'s"}',
            ("feed", "json", '{"cmd": "ls -la --all", "q": "it\'s"}'),
        ),
        ("feed feed2 {}", ("feed", "json", "feed2 {}")),
        ("feed --unknown x", ("feed", "json", "--unknown x")),
        ("--text hello  world", (None, "text", "hello  world")),
        ("--text feed hello", (None, "text", "feed hello")),
        ("feed --text {not json}", ("feed", "text", "{not json}")),
        ("feed --text", ("feed", "text", "")),
        ("feed --text --expr x", ("feed", "text", "--expr x")),
        ("feed --text=a b", ("feed", "text", "a b")),
        ("feed --expr {'a': x}", ("feed", "expr", "{'a': x}")),
        ("--expr order", (None, "expr", "order")),
        ("--expr=x + 1", (None, "expr", "x + 1")),
    ],
)
def test_send_line_grammar(line, parsed):
    """%ws_send's declared parser takes NAME and the options; the payload is the rest as typed."""
    from nbws.magics import parse_send_line

    assert parse_send_line(line) == parsed


def test_send_help_is_its_parser(k):
    """%ws_send? is the help of the parser that parses the line."""
    msg_id = k.submit("%ws_send?")
    k.wait([msg_id])
    help_text = str(k.reply(msg_id).get("payload")) + k.stream_text(msg_id)
    for word in ("NAME", "PAYLOAD", "--text", "--expr", "%%ws_send"):
        assert word in help_text


@pytest.mark.parametrize(
    "text, sent",
    [
        ('{"a": 1}', '{"a": 1}'),
        (" \n [1, 2] \n", "[1, 2]"),
        ('"NaN"', '"NaN"'),
        ('{"s": "Infinity \\" NaN"}', '{"s": "Infinity \\" NaN"}'),
        ("1" * 5000, "1" * 5000),
        ("1e999", "1e999"),
    ],
)
def test_parse_json_payload_accepts_json(text, sent):
    """JSON as JSON.parse reads it comes back as it will be sent (surrounding space dropped)."""
    from nbws.magics import parse_json_payload

    assert parse_json_payload(text) == sent


@pytest.mark.parametrize(
    "text, message",
    [
        ("NaN", "not valid JSON (NaN at line 1 column 1: JSON has no NaN or Infinity; use null or a string)"),
        ('{"a": "NaN", "b": Infinity}', "not valid JSON (Infinity at line 1 column 19:"),
        ("[1,\n -Infinity]", "not valid JSON (-Infinity at line 2 column 2:"),
        ("[NaN, }", "not valid JSON (NaN at line 1 column 2:"),
        ('{"op": subscribe}', "not valid JSON (Expecting value at line 1 column 8)"),
        ("", "not valid JSON (Expecting value at line 1 column 1)"),
        ("{'a': 1}", "not valid JSON (Expecting property name enclosed in double quotes at line 1 column 2)"),
        ("[" * 100_000 + "]" * 100_000, "too deeply nested to check as JSON"),
    ],
)
def test_parse_json_payload_refuses_what_is_not_json(text, message):
    """Not JSON (NaN and Infinity included): ValueError with one line saying what and where."""
    from nbws.magics import parse_json_payload

    with pytest.raises(ValueError) as raised:
        parse_json_payload(text)
    assert str(raised.value).startswith(message)
    assert "\n" not in str(raised.value)


@pytest.mark.parametrize(
    "target, cell, exception",
    [
        ("nbws.WebSocket.send", '%ws_send feed {"a": 1}', "TypeError"),
        ("nbws.WebSocket.send", "%ws_send feed --text hi", "ValueError"),
        ("nbws.WebSocket.send", "%ws_send feed --expr [1]", "TypeError"),
        ("nbws.WebSocket.wait_for_messages", "%ws_wait feed --timeout 5", "TypeError"),
        ("nbws.WebSocket.wait_for_messages", "%ws_wait feed --timeout 5", "KeyError"),
        ("nbws.WebSocket.close", "%ws_close feed", "TypeError"),
        ("nbws.close_all", "%ws_close --all", "TypeError"),
        ("nbws.connect", "%ws_connect {URL}/echo --name other --no-panel", "TypeError"),
        ("nbws.connections", "%ws_frame feed", "TypeError"),
    ],
)
def test_a_bug_keeps_its_traceback(k, target, cell, exception):
    """An exception nbws did not mean for the user (a bug) is not turned into a UsageError."""
    k.run("%ws_connect {URL}/echo --name feed --no-panel")
    k.run(f"_saved = {target}\ndef _broken(*args, **kwargs):\n    raise {exception}('a bug')")
    k.run(f"{target} = _broken")
    try:
        msg_id = k.submit(cell)
        k.wait([msg_id])
        reply = k.reply(msg_id)
    finally:
        k.run(f"{target} = _saved")
    assert reply["status"] == "error"
    assert reply["ename"] == exception
    traceback = plain("".join(reply["traceback"]))
    assert "Traceback (most recent call last)" in traceback and "_broken" in traceback


def test_interrupting_ws_wait_leaves_the_connection_healthy(k):
    """A kernel interrupt stops %ws_wait with KeyboardInterrupt; the connection keeps working."""
    k.run("%ws_connect {URL}/echo --name e --no-panel")
    msg_id = k.submit("print('waiting', flush=True)\n%ws_wait e -n 100 --timeout 20")
    k.wait_for_output(msg_id, "waiting")  # the cell is running: the next thing it does is wait
    k.manager.interrupt_kernel()
    k.wait([msg_id])
    assert k.reply(msg_id)["ename"] == "KeyboardInterrupt"
    k.run("%ws_send e --text still here\n%ws_wait e --timeout 5")
    assert value(k, "e.ready_state.name, e.messages[-1].data") == "OPEN still here"


def test_importing_nbws_in_the_kernel_does_not_load_the_magics_module():
    """The magics import IPython only when loaded (core stays IPython-free)."""
    import subprocess
    import sys

    code = "import nbws, sys; print('nbws.magics' in sys.modules, 'IPython' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30)
    assert out.stdout.split() == ["False", "False"]


def test_list_masks_secrets_in_urls(k):
    """%ws_list shows URLs with their tokens masked."""
    k.run("%ws_connect {URL}/echo?api_key=s3cr3t-42 --name e --no-panel")
    k.run("table = %ws_list")
    assert value(k, "table.loc['e', 'url']").endswith("/echo?api_key=***")
