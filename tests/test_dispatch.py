"""Listener dispatch: the hold at creation, late listeners, and failures that are reported."""

from __future__ import annotations

import contextvars
import threading
import time

import nbws
from nbws.dispatch import Dispatcher, Hold
from nbws.events import ErrorEvent, OpenEvent
from nbws.state import CONNECTING, OPEN


def test_a_listener_added_a_moment_late_sees_every_held_message_despite_rollover(demo):
    """max_rows=100 on a fast stream of 5,000 messages: a listener added a moment after
    connect() (events still held) gets all 5,000, though the store kept only 100."""
    ws = nbws.connect(demo.url + "/ticker?rate=0&count=5000", max_rows=100)
    deadline = time.monotonic() + 0.4  # within the hold: no nbws blocking call, same frame
    while ws.stats["received"] < 5000 and time.monotonic() < deadline:
        pass
    seqs = []
    ws.add_event_listener("message", lambda event: seqs.append(event.seq))
    ws.wait_closed(10)
    assert len(ws.messages) == 100
    assert seqs == list(range(5000))


def test_held_events_keep_their_order_and_the_state_they_happened_in():
    """The hold delivers open, messages and error in order; a listener sees ready_state as it
    was when each happened."""
    state = [CONNECTING]
    dispatcher = Dispatcher(lambda: "t", lambda: state[0], contextvars.copy_context(), Hold())
    seen = []
    state[0] = OPEN
    dispatcher.emit("open", OpenEvent())
    dispatcher.message("a", 0, time.time_ns())
    state[0] = CONNECTING
    dispatcher.emit("error", ErrorEvent(None, "dropped"), quiet=True)
    for type in ("open", "message", "error"):
        dispatcher.add(type, lambda e, type=type: seen.append((type, dispatcher.presenting)), ())
    assert seen == []  # still held
    dispatcher.release()
    assert seen == [("open", OPEN), ("message", OPEN), ("error", CONNECTING)]
    assert dispatcher.presenting is None


def test_without_a_hold_messages_cost_nothing_until_someone_listens():
    """The hot-path flag is off with no message listener, on with one, off again after removal."""
    dispatcher = Dispatcher(lambda: "t", lambda: OPEN, contextvars.copy_context(), None)
    assert dispatcher.wants_messages is False

    def fn(event):
        pass

    dispatcher.add("message", fn, ())
    assert dispatcher.wants_messages is True
    dispatcher.remove("message", fn)
    assert dispatcher.wants_messages is False


def test_every_exception_a_listener_raises_is_counted_and_reported(capsys):
    """SystemExit, KeyboardInterrupt and ordinary errors: counted, an error event, printed
    (three tracebacks per listener, then only counted)."""
    dispatcher = Dispatcher(lambda: "t", lambda: OPEN, contextvars.copy_context(), None)
    errors = []
    dispatcher.add("error", errors.append, ())
    raised = iter([SystemExit(3), KeyboardInterrupt(), ValueError("x"), RuntimeError("y")])

    def hostile(event):
        raise next(raised)

    dispatcher.add("message", hostile, ())
    for seq in range(4):
        dispatcher.message("m", seq, time.time_ns())
    assert dispatcher.listener_errors == 4
    assert [type(e.error) for e in errors] == [SystemExit, KeyboardInterrupt, ValueError, RuntimeError]
    err = capsys.readouterr().err
    assert err.count("Traceback") == 3 and "counted, not printed" in err


def test_an_error_nobody_hears_is_printed_in_the_creating_context(capsys):
    """Never silent: with no error listener and nobody told, the message is printed."""
    dispatcher = Dispatcher(lambda: "t", lambda: OPEN, contextvars.copy_context(), None)
    dispatcher.emit("error", ErrorEvent(None, "something broke"))
    dispatcher.emit("error", ErrorEvent(None, "the user's own doing"), quiet=True)
    assert capsys.readouterr().err == "something broke\n"


def test_hold_ends_when_the_creating_frame_returns():
    """A Hold is over once the frame that created it has returned."""
    holder = {}

    def create():
        holder["hold"] = Hold()
        holder["during"] = holder["hold"].over()

    thread = threading.Thread(target=create)
    thread.start()
    thread.join()
    assert holder["during"] is False
    assert holder["hold"].over() is True
