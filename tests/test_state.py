"""The connection state machine, fed inputs directly: no sockets, no threads, no sleeps."""

from __future__ import annotations

import pytest

from nbws.errors import ConnectError
from nbws.events import CloseEvent, ErrorEvent, OpenEvent
from nbws.retry import RetryPolicy
from nbws.state import (
    CLOSED,
    CLOSING,
    CONNECTING,
    OPEN,
    Abort,
    CancelHandshake,
    CancelRetry,
    Connect,
    Emit,
    Failure,
    Machine,
    ScheduleRetry,
    SendClose,
)

URL = "ws://127.0.0.1:9/"


def machine(reconnect: bool = False) -> Machine:
    """A machine whose backoff always picks the top of its range (deterministic delays)."""
    return Machine(RetryPolicy(reconnect, (1.0, 4.0), uniform=lambda lo, hi: hi), URL)


def failure(retryable: bool = True, message: str = "connection refused") -> Failure:
    return Failure(message, ConnectError(message, url=URL), retryable)


def emitted(outputs: list) -> list[tuple[str, object]]:
    return [(o.type, o.event) for o in outputs if isinstance(o, Emit)]


def kinds(outputs: list) -> list[str]:
    return [o.type if isinstance(o, Emit) else type(o).__name__ for o in outputs]


DROP = CloseEvent(1006, "", False)
DROP_ERROR = ErrorEvent(None, "connection lost without a close frame")


def test_opens_then_closes_cleanly():
    """start -> Connect; handshake -> OPEN + open event; close -> CLOSING + close frame; end -> CLOSED."""
    m = machine()
    assert m.start() == [Connect()] and m.state == CONNECTING
    assert emitted(m.handshake_done()) == [("open", OpenEvent(reconnect=False))]
    assert m.state == OPEN
    assert m.close_requested(1000, "bye") == [SendClose(1000, "bye")] and m.state == CLOSING
    out = m.connection_lost(CloseEvent(1000, "bye", True), None, lived=1.0)
    assert emitted(out) == [("close", CloseEvent(1000, "bye", True))]
    assert m.state == CLOSED and m.close_event == CloseEvent(1000, "bye", True)


def test_close_is_idempotent():
    """A second close request does nothing, in any state."""
    m = machine()
    m.start()
    m.handshake_done()
    assert m.close_requested(1000, "") == [SendClose(1000, "")]
    assert m.close_requested(3000, "again") == []
    m.connection_lost(CloseEvent(1000, "", True), None, 0.1)
    assert m.close_requested(1000, "") == []


def test_failed_handshake_without_reconnect_is_error_then_close_1006():
    """reconnect=False is the policy that never retries: error, then close 1006, CLOSED."""
    m = machine()
    m.start()
    f = failure()
    out = m.handshake_failed(f)
    assert kinds(out) == ["error", "close"]
    assert out[0].event.error is f.error
    assert out[1].event == CloseEvent(1006, "", False)
    assert m.state == CLOSED and m.last_failure is f


def test_retryable_failure_schedules_a_retry_and_counts_the_attempt():
    """With reconnect=True a retryable failure keeps CONNECTING, reports, and backs off."""
    m = machine(reconnect=True)
    m.start()
    out = m.handshake_failed(failure())
    assert kinds(out) == ["error", "ScheduleRetry"]
    assert out[0].event.message.endswith("reconnecting (attempt 1)")
    assert out[1] == ScheduleRetry(1.0)
    assert (m.state, m.attempts, m.reconnecting) == (CONNECTING, 1, True)
    assert m.retry_due() == [Connect()]
    assert m.handshake_failed(failure())[1] == ScheduleRetry(2.0)  # doubles
    m.retry_due()
    assert m.handshake_failed(failure())[1] == ScheduleRetry(4.0)
    m.retry_due()
    assert m.handshake_failed(failure())[1] == ScheduleRetry(4.0)  # capped at the longest
    assert m.attempts == 4


def test_fatal_failure_is_not_retried_even_with_reconnect():
    """HTTP 403, TLS failures...: the transport says not retryable, the machine closes."""
    m = machine(reconnect=True)
    m.start()
    assert kinds(m.handshake_failed(failure(retryable=False))) == ["error", "close"]
    assert m.state == CLOSED


def test_drop_reconnects_and_the_reopen_says_so():
    """A 1006 drop with reconnect=True: CONNECTING, an error that says when, then a retry; the
    next open event has reconnect=True and the reopen is counted."""
    m = machine(reconnect=True)
    m.start()
    m.handshake_done()
    out = m.connection_lost(DROP, DROP_ERROR, lived=0.5)
    assert kinds(out) == ["error", "ScheduleRetry"]
    assert "reconnecting in 1.0s" in out[0].event.message
    assert m.state == CONNECTING and m.reconnecting
    assert m.retry_due() == [Connect()]
    assert emitted(m.handshake_done()) == [("open", OpenEvent(reconnect=True))]
    assert (m.state, m.reconnects, m.attempts) == (OPEN, 1, 0)


def test_a_stable_connection_that_drops_reopens_at_once():
    """Open for longer than STABLE_SECONDS: reconnect with no delay."""
    m = machine(reconnect=True)
    m.start()
    m.handshake_done()
    assert m.connection_lost(DROP, DROP_ERROR, lived=60.0)[-1] == ScheduleRetry(0.0)


@pytest.mark.parametrize("code", [1000, 1002, 1008, 3000, 4999])
def test_close_codes_that_end_the_conversation_are_not_reconnected(code):
    """1000, protocol and policy errors, application codes: CLOSED even with reconnect=True."""
    m = machine(reconnect=True)
    m.start()
    m.handshake_done()
    out = m.connection_lost(CloseEvent(code, "", True), None, lived=1.0)
    assert kinds(out) == ["close"] and m.state == CLOSED


def test_close_while_waiting_between_attempts_wins_at_once():
    """close() between two attempts: the wait is cancelled, error + close 1006, no more attempts."""
    m = machine(reconnect=True)
    m.start()
    m.handshake_failed(failure())
    out = m.close_requested(1000, "")
    assert kinds(out) == ["CancelRetry", "error", "close"]
    assert out[1].quiet  # the user asked for it: nothing to print
    assert m.state == CLOSED
    assert m.retry_due() == []  # a retry timer that fired anyway does nothing


def test_close_during_a_handshake_cancels_it_and_closes_when_it_reports():
    """close() during a handshake: cancel it; its failure then closes, quietly, never retried."""
    m = machine(reconnect=True)
    m.start()
    assert m.close_requested(1000, "") == [CancelHandshake()]
    assert m.state == CONNECTING
    out = m.handshake_failed(failure(retryable=True, message="cancelled"))
    assert kinds(out) == ["error", "close"]
    assert out[0].quiet and "before the connection was established" in out[0].event.message
    assert m.state == CLOSED


def test_close_that_races_the_end_of_a_handshake_sends_a_close_frame():
    """The handshake finished after close() was asked: no open event, a close frame instead."""
    m = machine()
    m.start()
    m.close_requested(3001, "late")
    assert m.handshake_done() == [SendClose(3001, "late")]
    assert m.state == CLOSING


def test_close_after_a_drop_with_reconnect_wins_over_the_retry():
    """A close request that comes while the drop is being handled: CLOSED, no retry scheduled."""
    m = machine(reconnect=True)
    m.start()
    m.handshake_done()
    m.close_requested(1000, "")
    out = m.connection_lost(DROP, DROP_ERROR, lived=1.0)
    assert kinds(out) == ["error", "close"] and m.state == CLOSED


def test_close_before_start_closes_without_connecting():
    """close() before the loop thread started the connection: no handshake at all."""
    m = machine()
    m.close_requested(1000, "")
    out = m.start()
    assert kinds(out) == ["error", "close"] and m.state == CLOSED


def test_abort_from_any_state_is_error_then_close_1006_without_retry():
    """An internal error or a dead loop thread: abort the transport, error + close 1006."""
    for prepare in (lambda m: m.start(), lambda m: (m.start(), m.handshake_done())):
        m = machine(reconnect=True)
        prepare(m)
        out = m.abort("nbws's loop thread died")
        assert Abort() in out
        assert kinds(out)[-2:] == ["error", "close"]
        assert out[-1].event == CloseEvent(1006, "", False) and m.state == CLOSED
        assert m.abort("again") == []


def test_abort_while_waiting_cancels_the_retry():
    m = machine(reconnect=True)
    m.start()
    m.handshake_failed(failure())
    assert CancelRetry() in m.abort("exit")


def test_events_after_closed_are_ignored():
    """A late handshake result or drop after CLOSED changes nothing."""
    m = machine()
    m.start()
    m.abort("gone")
    assert m.handshake_failed(failure()) == []
    assert m.connection_lost(DROP, None, 1.0) == []
    assert m.handshake_done() == [Abort()]  # a handshake that finished anyway is dropped
    assert m.state == CLOSED


def test_reopen_only_from_closed():
    """reconnect(): CLOSED -> CONNECTING with a handshake; the open says reconnect=True."""
    m = machine()
    m.start()
    m.handshake_done()
    with pytest.raises(RuntimeError):
        m.reopen()
    m.close_requested(1000, "")
    m.connection_lost(CloseEvent(1000, "", True), None, 1.0)
    assert m.reopen() == [Connect()]
    assert (m.state, m.close_request, m.close_event) == (CONNECTING, None, None)
    assert emitted(m.handshake_done()) == [("open", OpenEvent(reconnect=True))]


def test_error_always_comes_before_close_and_state_is_closed_by_then():
    """The WHATWG order: whenever a close is emitted, an error (if any) precedes it and the
    machine is already CLOSED."""
    m = machine()
    m.start()
    m.handshake_done()
    out = m.connection_lost(DROP, DROP_ERROR, lived=1.0)
    assert kinds(out) == ["error", "close"] and m.state == CLOSED
