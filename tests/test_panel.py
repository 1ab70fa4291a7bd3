"""nbws.panel: the live widget panel, without a browser (dummy comm), in a kernel, in JupyterLab."""

from __future__ import annotations

import json
import threading
import time

import pytest
from lab import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, JupyterLab, chromium_available, run_all_cells

import nbws
import nbws.loop
from nbws import panel as panel_module

from kernel import Kernel

XSS = '<img src=x onerror="window.__nbws_xss=1;alert(1)">'
SCRIPT = '{"html": "</script><script>window.__nbws_xss=2</script>"}'


def wait_for(predicate, timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)


@pytest.fixture
def echo(demo):
    return nbws.connect(demo.url + "/echo", name="echo").wait_open(5)


# -- without a browser (ipywidgets' dummy comm) ----------------------------------------------


def test_message_text_is_escaped_never_markup(echo):
    """HTML and script in messages arrive in the panel as escaped text."""
    panel = echo.panel()
    echo.send(XSS)
    echo.send(SCRIPT)
    wait_for(lambda: "__nbws_xss=2" in panel.body.value and panel.body.value.count("↓") == 2)
    body = panel.body.value
    assert "<img" not in body and "<script" not in body and "</script>" not in body
    assert '&lt;img src=x onerror="window.__nbws_xss=1;alert(1)"&gt;' in body  # quotes: only text
    assert "&lt;/script&gt;&lt;script&gt;" in body


def test_hostile_url_and_name_are_escaped(demo):
    """What the user typed (URL, name) is escaped too."""
    ws = nbws.connect(demo.url + "/echo?<b>bold</b>", name="x<i>").wait_open(5)
    panel = ws.panel()
    wait_for(lambda: panel.status.value)
    status = panel.status.value
    assert "<b>bold" not in status and "&lt;b&gt;bold" in status
    assert "x&lt;i&gt;" in status


def test_counters_badge_and_final_state(demo):
    """The status shows the counters; after close the badge says closed with code and reason."""
    ws = nbws.connect(demo.url + "/close?code=4001&reason=bye&after=3", name="short")
    panel = ws.panel()
    ws.wait_closed(5)
    wait_for(lambda: "closed 4001 bye" in panel.status.value)
    assert "received <b>3</b>" in panel.status.value
    wait_for(lambda: not panel.timer_running)  # the timer stops once the final state is shown
    assert panel.close_button.disabled


def test_binary_shows_length_and_hex(echo):
    """A binary message shows its length and a hex preview."""
    panel = echo.panel()
    echo.send(bytes(range(40)))
    wait_for(lambda: "binary, 40 bytes" in panel.body.value)
    assert "00 01 02 03" in panel.body.value
    assert "… " not in panel_module.describe(b"\x00") and "…" in panel_module.describe(bytes(40))


BOOK = json.dumps(
    {
        "e": "depthUpdate",
        "s": "BTCUSDT",
        "b": [[f"{67000 - k * 0.01:.2f}", "0.12345678"] for k in range(20)],
        "a": [[f"{67000 + k * 0.01:.2f}", "0.87654321"] for k in range(20)],
    },
    indent=1,  # a server that pretty-prints: still one line in the log
)


def test_a_message_is_one_compact_line_cut_with_its_size():
    """JSON on one line, compact; a long message is cut and says how big it is."""
    assert panel_module.describe('{"a": 1,\n "b": [1, 2]}') == '{"a":1,"b":[1,2]}'
    assert panel_module.describe("two\nlines") == "two ⏎ lines"
    line = panel_module.describe(BOOK)
    assert "\n" not in line and line.startswith('{"e":"depthUpdate","s":"BTCUSDT","b":[["67000.00"')
    size = len(BOOK.encode()) / 1024
    assert line.endswith(f" … ({size:.1f} KiB in all)")
    assert len(line) < panel_module.LINE_CHARS + 30


def test_the_pretty_form_is_there_only_for_what_one_line_cuts():
    assert panel_module.describe_in_full('{"a": 1}') is None
    full = panel_module.describe_in_full(BOOK)
    assert full.startswith('{\n  "e": "depthUpdate",')
    assert len(panel_module.describe_in_full(json.dumps(list(range(5000))))) < panel_module.MAX_CHARS + 40


def test_kb_sized_messages_keep_the_panel_compact(echo):
    """60 order-book messages of ~1.5 KB: each one line in the log, the tail's cells cut."""
    panel = echo.panel()
    for _ in range(60):
        echo.send(BOOK)
    echo.wait_for_messages(60, timeout=10)
    wait_for(lambda: panel.body.value.count("nbws-msg") == panel.log_size and "nbws-tail" in panel.body.value)
    body = panel.body.value
    assert "<details>" not in body and "<pre>" not in body  # live: lines only
    assert len(body) < 50 * (panel_module.LINE_CHARS + 200) + 5_000  # not 50 x 1.5 KB
    tail = body.split('class="nbws-tail"')[1]
    cells = [cell.split("</td>")[0] for cell in tail.split("<td>")[1:]]
    assert cells and max(map(len, cells)) <= panel_module.CELL_CHARS
    assert any(cell.endswith("…") for cell in cells)


def test_paused_view_opens_each_long_message_onto_its_pretty_form(echo):
    panel = echo.panel()
    echo.send(BOOK)
    echo.send("short")
    wait_for(lambda: ">short<" in panel.body.value)
    panel.pause_button.click()
    wait_for(lambda: "<details>" in panel.body.value)
    body = panel.body.value
    assert body.count("<details>") == 2  # the book, sent and received; "short" stays a line
    assert '"e": "depthUpdate"' in body
    panel.pause_button.click()
    wait_for(lambda: "<details>" not in panel.body.value)


def test_the_style_is_sent_once(echo):
    """The style sheet is its own widget: status updates do not carry it again."""
    panel = echo.panel()
    assert "<style>" in panel.style.value
    echo.send("x")
    wait_for(lambda: "received <b>1</b>" in panel.status.value)
    assert "<style" not in panel.status.value and "<style" not in panel.body.value


def test_log_is_bounded_newest_last(echo):
    """The log holds the newest log_size messages, the newest last on screen."""
    panel = echo.panel()
    for i in range(60):
        echo.send(f"m{i}")
    echo.wait_for_messages(60, timeout=10)
    wait_for(lambda: panel.body.value.count("↓ in") and ">m59<" in panel.body.value.split("↓ in", 1)[1])
    body = panel.body.value
    # 60 sent and 60 received: the log shows the newest 50 of the 120 entries, by time
    assert body.count('class="nbws-msg') == panel.log_size
    shown = [chunk.split("</code>")[0] for chunk in body.split("<code>")[1:]]
    assert ">m0<" not in body and ">m9<" not in body
    assert shown[0] == "m59"  # the newest: the last echo
    # newest first in the DOM (column-reverse shows it last, scrolled into view)
    assert body.index(">m59<") < body.index(">m58<")


def test_send_box_validates_json_before_sending(echo):
    """Invalid JSON is reported inline and not sent; valid JSON and text go out, marked outgoing."""
    panel = echo.panel()
    panel.editor.value = '{"op": subscribe}'
    panel.send_json_button.click()
    assert "Not sent: not valid JSON (Expecting value at line 1 column 8)" in panel.send_status.value
    panel.editor.value = '{"price": NaN}'  # Python's json reads it; JSON.parse does not
    panel.send_json_button.click()
    assert "JSON has no NaN or Infinity" in panel.send_status.value
    assert echo.stats["sent"] == 0
    panel.editor.value = '{"op": "subscribe"}'
    panel.send_json_button.click()
    panel.editor.value = "plain words"
    panel.send_text_button.click()
    assert echo.stats["sent"] == 2
    assert "Sent text" in panel.send_status.value
    wait_for(lambda: panel.body.value.count("↑ out") == 2 and panel.body.value.count("↓") == 2)


def test_send_box_on_a_closed_connection_says_so(echo):
    """Sending after close shows the error in the panel."""
    panel = echo.panel()
    echo.close()
    panel.editor.value = "late"
    panel.send_text_button.click()
    assert "Not sent" in panel.send_status.value and "closed" in panel.send_status.value


def test_pause_freezes_the_view_while_receiving_goes_on(echo):
    """Pause keeps the log as it was; counters go on; resume shows what came meanwhile."""
    panel = echo.panel()
    echo.send("before")
    wait_for(lambda: ">before<" in panel.body.value)
    panel.pause_button.click()
    assert panel.pause_button.description == "Resume"
    echo.send("during")
    wait_for(lambda: "received <b>2</b>" in panel.status.value)
    assert ">during<" not in panel.body.value
    assert "view paused" in panel.status.value
    panel.pause_button.click()
    wait_for(lambda: ">during<" in panel.body.value)


def test_clear_empties_the_view_only(echo):
    """Clear empties the log; the connection keeps every message."""
    panel = echo.panel()
    echo.send("old")
    wait_for(lambda: ">old<" in panel.body.value)
    panel.clear_button.click()
    wait_for(lambda: "no messages yet" in panel.body.value)
    echo.send("new")
    wait_for(lambda: ">new<" in panel.body.value)
    assert ">old<" not in panel.body.value
    assert [m.data for m in echo.messages] == ["old", "new"]


def test_close_and_reconnect_buttons(echo):
    """Close closes; Reconnect opens the same connection again, keeping its messages."""
    panel = echo.panel()
    echo.send("first")
    echo.recv(timeout=5)
    panel.close_button.click()
    assert echo.ready_state == nbws.CLOSED
    wait_for(lambda: "closed 1000" in panel.status.value)
    panel.reconnect_button.click()
    echo.wait_open(5)
    assert echo.ready_state == nbws.OPEN
    assert nbws.connections()["echo"] is echo
    wait_for(lambda: ">open<" in panel.status.value and "reconnects <b>1</b>" in panel.status.value)
    assert not panel.close_button.disabled
    echo.send("second")
    assert echo.recv(timeout=5).data == "second"
    assert [m.data for m in echo.messages] == ["first", "second"]


def test_one_panel_per_connection_and_display_shows_it(echo):
    """ws.panel() is the same widget every time; displaying ws gives that widget's view."""
    panel = echo.panel()
    assert echo.panel() is panel
    bundle = echo._repr_mimebundle_()
    assert bundle["application/vnd.jupyter.widget-view+json"]["model_id"] == panel.model_id
    assert bundle["text/plain"] == repr(echo)


def test_updates_are_coalesced_at_any_rate(demo):
    """A fast stream changes the panel's widgets at most MAX_UPDATES_PER_SECOND times a second."""
    ws = nbws.connect(demo.url + "/ticker?rate=5000&count=10000", name="fast")
    panel = ws.panel()
    changes: list[float] = []
    for widget in (panel.status, panel.body, panel.close_button):
        widget.observe(lambda change: changes.append(time.monotonic()))
    ws.wait_closed(20)
    wait_for(lambda: not panel.timer_running, timeout=5)
    assert ws.stats["received"] == 10_000
    assert "received <b>10,000</b>" in panel.status.value  # the final state is shown
    for i, start in enumerate(changes):
        in_window = [t for t in changes[i:] if t - start < 1.0]
        assert len(in_window) <= panel_module.MAX_UPDATES_PER_SECOND
    idle = len(changes)
    panel.refresh()  # a redraw of the final state, then a callback queued behind it
    drawn = threading.Event()
    nbws.loop.call_soon(drawn.set)
    assert drawn.wait(5)
    assert len(changes) == idle  # nothing sent when nothing changes
    assert not panel.timer_running  # and the timer stopped again


def test_a_redraw_parses_the_newest_rows_with_the_collector_paused(echo):
    """A redraw of KB-sized order books makes at most one garbage collection on the loop thread
    (the one after it; see ``nbws.collector``), not one per 700 objects it parses."""
    import gc

    book = json.dumps({"e": "snapshot", "bids": [["67000.00", "0.5"]] * 2_500})
    panel = echo.panel()
    for _ in range(10):
        echo.send(book)
    wait_for(lambda: echo.stats["received"] == 10)
    on_the_loop: list[int] = []

    def record(phase: str, info: dict) -> None:
        if phase == "start" and nbws.loop.in_loop_thread():
            on_the_loop.append(info["generation"])

    drawn = threading.Event()
    gc.callbacks.append(record)
    try:
        panel.refresh()
        nbws.loop.call_soon(drawn.set)
        assert drawn.wait(5)
    finally:
        gc.callbacks.remove(record)
    assert len(on_the_loop) <= 1
    assert "bids" in panel.body.value and gc.isenabled()


def test_the_update_budget_is_charged_the_bytes_sent_not_the_characters(echo, monkeypatch):
    """Each update is charged at least what its comm message weighs in UTF-8 (orjson, as the
    kernel sends it), however much of the log is not ASCII."""
    import orjson

    charged: list[int] = []
    spend = panel_module.UpdateBudget.spend

    def charging(budget, now, sizes):
        charged.extend(sizes)
        spend(budget, now, sizes)

    monkeypatch.setattr(panel_module.UpdateBudget, "spend", charging)
    panel = echo.panel()
    sent: list[int] = []

    def weigh(change) -> None:
        message = {"method": "update", "state": {change["name"]: change["new"]}, "buffer_paths": []}
        sent.append(len(orjson.dumps(message)))

    for widget, name in ((panel.status, "value"), (panel.body, "value"), (panel.close_button, "disabled")):
        widget.observe(weigh, name)
    # Forget what was drawn before the observers: on the loop thread, between two redraws.
    forgotten = threading.Event()
    nbws.loop.call_soon(lambda: (charged.clear(), sent.clear(), forgotten.set()))
    assert forgotten.wait(5)
    echo.send("ünïcödé … " * 40)
    wait_for(lambda: "ünïcödé" in panel.body.value)
    echo.close()
    wait_for(lambda: not panel.timer_running)
    assert len(sent) == len(charged) > 0
    assert all(cost >= size for cost, size in zip(charged, sent)), list(zip(charged, sent))


def test_reconnect_from_code_restarts_a_stopped_panel(echo):
    """ws.reconnect() wakes the panel of a closed connection."""
    panel = echo.panel()
    echo.close()
    wait_for(lambda: not panel.timer_running)
    echo.reconnect().wait_open(5)
    wait_for(lambda: ">open<" in panel.status.value)


# -- in a real kernel ------------------------------------------------------------------------


def test_iopub_stays_within_budget_at_full_rate(tmp_path, demo):
    """A panel displayed in a kernel during a full-speed stream: <= 20 updates/s, final state shown."""
    kernel = Kernel(tmp_path)
    try:
        cell = kernel.submit(
            "import nbws\n"
            f"fast = nbws.connect({demo.url + '/ticker?rate=0&count=50000'!r}, name='fast')\n"
            "fast"
        )
        kernel.wait([cell])
        # Until the panel has drawn its final state (within its budget) and stopped its timer;
        # its updates go out on IOPub before this cell's idle status, which wait() reads.
        kernel.run(
            "fast.wait_closed(60)\n"
            "import time\n"
            "deadline = time.monotonic() + 10\n"
            "while fast.panel().timer_running:\n"
            "    assert time.monotonic() < deadline, 'the panel is still drawing'\n"
            "    time.sleep(0.01)\n",
            timeout=90,
        )
    finally:
        kernel.shutdown()
    updates = [m for m in kernel.iopub if m["msg_type"] == "comm_msg"]
    assert updates, "the panel sent no updates"
    times = sorted(m["header"]["date"].timestamp() for m in updates)
    busiest = max(sum(1 for t in times[i:] if t - start < 1.0) for i, start in enumerate(times))
    assert busiest <= panel_module.MAX_UPDATES_PER_SECOND
    states = [m["content"]["data"].get("state", {}) for m in updates]
    statuses = [s["value"] for s in states if "nbws-counters" in s.get("value", "")]
    assert "received <b>50,000</b>" in statuses[-1]
    assert "closed 1000 end of ticker" in statuses[-1]
    span = max(times[-1] - times[0], 1.0)
    all_times = [m["header"]["date"].timestamp() for m in kernel.iopub]
    assert len(all_times) / span < 1000  # jupyter_server's IOPub message rate limit
    sent_bytes = sum(len(str(m["content"])) for m in kernel.iopub)
    assert sent_bytes / span < 1_000_000  # and its data rate limit


# -- in JupyterLab, in headless Chromium -----------------------------------------------------


def test_panel_in_jupyterlab(tmp_path):
    """Run All in a real JupyterLab: badges open, messages keep coming, the XSS payload is text,
    and a feed of ~1 KB order-book diffs keeps the panel compact: one line a message, a fixed
    height."""
    missing = chromium_available()
    assert missing is None, missing
    import nbformat
    from playwright.sync_api import TimeoutError as PlaywrightTimeoutError
    from playwright.sync_api import sync_playwright

    root = tmp_path / "lab"
    root.mkdir()
    cells = [
        "import nbws, nbws.demo\nserver = nbws.demo.start()\n"
        "ticker = nbws.connect(server.url + '/ticker?rate=20', name='ticker')\nticker",
        "echo = nbws.connect(server.url + '/echo', name='echo').wait_open()\n"
        f"echo.send({XSS!r})\necho.send({SCRIPT!r})\necho",
        "fast = nbws.connect(server.url + '/ticker?rate=0&count=100000', name='fast')\nfast",
        "book = nbws.connect(server.url + '/book?rate=50', name='book')\nbook",
    ]
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, root / "panel.ipynb")
    ARTIFACTS.mkdir(exist_ok=True)
    lab = JupyterLab(root)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1200, "height": 1400})
            dialogs: list[str] = []
            page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
            run_all_cells(page, lab, "panel.ipynb")
            panels = page.locator(".nbws-head")
            try:
                panels.nth(3).wait_for(timeout=60_000)
            except Exception:
                page.screenshot(path=str(ARTIFACTS / "panel-lab-failure.png"))
                raise

            def received(i: int) -> int:
                text = panels.nth(i).locator(".nbws-counters span").first.inner_text()
                return int(text.split()[-1].replace(",", ""))

            page.wait_for_function(
                "document.querySelectorAll('.nbws-badge')[0].innerText === 'open'", timeout=30_000
            )
            first = received(0)
            try:  # while the fast stream runs at full speed
                page.wait_for_function(
                    "n => Number(document.querySelectorAll('.nbws-head')[0]"
                    ".querySelector('.nbws-counters span').innerText.split(' ').pop()"
                    ".replaceAll(',', '')) >= n",
                    arg=first + 10,
                    timeout=5_000,
                )
            except PlaywrightTimeoutError:
                raise AssertionError(f"the ticker panel stopped updating at {received(0)}") from None
            page.get_by_text("closed 1000 end of ticker").wait_for(timeout=60_000)
            assert received(2) == 100_000
            echo_panel = page.locator(".jp-OutputArea-output").nth(1)
            echo_panel.get_by_text("__nbws_xss=1;alert(1)").first.wait_for(timeout=10_000)
            assert XSS in echo_panel.inner_text()
            assert page.evaluate("window.__nbws_xss") is None
            assert dialogs == []
            assert "rate exceeded" not in page.inner_text("body")
            book_panel = page.locator(".jp-OutputArea-output").nth(3)
            page.wait_for_function(
                "document.querySelectorAll('.jp-OutputArea-output')[3]"
                ".querySelectorAll('.nbws-msg').length >= 50",
                timeout=30_000,
            )
            heights = page.evaluate(
                "[...document.querySelectorAll('.jp-OutputArea-output')[3]"
                ".querySelectorAll('.nbws-msg')].map(e => e.offsetHeight)"
            )
            assert max(heights) < 30, heights  # one line each, not a pretty-printed book
            assert book_panel.bounding_box()["height"] < 800
            widths = page.evaluate(  # the log and the tail fit in the output area, not beyond
                "(() => { const out = document.querySelectorAll('.jp-OutputArea-output')[3];"
                " return [out.getBoundingClientRect().right,"
                " out.querySelector('.nbws-log').getBoundingClientRect().right,"
                " out.querySelector('.nbws-tail').getBoundingClientRect().right]; })()"
            )
            assert max(widths[1:]) <= widths[0] + 1, widths
            assert "KiB in all" in book_panel.inner_text()
            page.screenshot(path=str(ARTIFACTS / "panel-lab.png"))
            for i, name in enumerate(["ticker", "echo", "fast", "book"]):
                page.locator(".jp-OutputArea-output").nth(i).screenshot(
                    path=str(ARTIFACTS / f"panel-{name}.png")
                )
            browser.close()
    finally:
        lab.close()
    assert "rate exceeded" not in lab.logs()


def test_secrets_in_the_url_are_masked(demo):
    """A token in the URL's query or a password in it never shows in the panel."""
    ws = nbws.connect(
        demo.url.replace("ws://", "ws://me:hunter22@") + "/echo?token=s3cr3t-42&rate=1"
    ).wait_open(5)
    panel = ws.panel()
    wait_for(lambda: panel.status.value)
    status = panel.status.value
    assert "s3cr3t-42" not in status and "hunter22" not in status
    assert "token=***" in status and "rate=1" in status


def test_badge_shows_reconnecting_and_the_attempt(servers):
    """While reconnect=True retries a server that is down, the badge says which attempt is next."""
    import socket

    probe = socket.socket()
    probe.bind(("127.0.0.1", 0))
    port = probe.getsockname()[1]
    probe.close()  # nothing listens there now
    ws = nbws.connect(f"ws://127.0.0.1:{port}/", reconnect=True, reconnect_delay=(0.05, 0.2))
    panel = ws.panel()
    wait_for(lambda: ws.stats["attempts"] >= 2)
    wait_for(lambda: "reconnecting (attempt " in panel.status.value)
    ws.close()
