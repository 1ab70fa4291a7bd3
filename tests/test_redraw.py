"""nbws.redraw: the coalescing timer that drives the panel and the chart."""

from __future__ import annotations

import gc
import threading

from nbws import loop as nbws_loop
from nbws.redraw import RedrawTimer


class Drawer:
    """A draw callback that says it is done after ``until`` calls and records each call."""

    def __init__(self, until: int) -> None:
        self.until = until
        self.calls: list[tuple[str, bool]] = []  # (thread name, collector enabled)
        self.done = threading.Event()

    def __call__(self) -> bool:
        self.calls.append((threading.current_thread().name, gc.isenabled()))
        finished = len(self.calls) >= self.until
        if finished:
            self.done.set()
        return finished


def settled() -> None:
    """Wait until every callback queued on the loop thread so far has run."""
    nbws_loop.submit(_noop()).result(timeout=5)


async def _noop() -> None:
    return None


def test_the_timer_draws_on_the_loop_thread_until_the_final_state_is_shown():
    drawer = Drawer(until=3)
    timer = RedrawTimer(drawer)
    assert not timer.running
    timer.refresh()
    assert drawer.done.wait(5)
    settled()
    assert not timer.running  # stopped by the third draw
    loop_thread = nbws_loop.submit(_thread_name()).result(timeout=5)
    assert [name for name, _ in drawer.calls] == [loop_thread] * 3
    assert not any(enabled for _, enabled in drawer.calls)  # the collector is paused while drawing
    assert gc.isenabled()


async def _thread_name() -> str:
    return threading.current_thread().name


def test_a_refresh_starts_a_stopped_timer_again_and_stop_cancels_the_next_tick():
    drawer = Drawer(until=1)
    timer = RedrawTimer(drawer)
    timer.refresh()
    assert drawer.done.wait(5)
    settled()
    assert not timer.running and len(drawer.calls) == 1
    drawer.until, drawer.done = 10**9, threading.Event()  # never done: it keeps ticking
    timer.refresh()
    settled()
    assert timer.running
    timer.stop()
    settled()
    assert not timer.running
    count = len(drawer.calls)
    timer.refresh()  # a refresh replaces the pending tick: still one chain of ticks
    timer.refresh()
    settled()
    assert timer.running and len(drawer.calls) == count + 2
    timer.stop()
    settled()


def test_a_timer_that_keeps_ticking_reads_as_running_while_it_draws():
    """Whoever waits for ``not running`` (a test, a notebook) must not see a tick in progress as
    the timer having stopped: the final state is not shown yet."""
    seen: list[bool] = []
    drawer = Drawer(until=3)
    timer = RedrawTimer(lambda: seen.append(timer.running) or drawer())
    timer.refresh()
    assert drawer.done.wait(5)
    settled()
    assert seen[1:] == [True, True] and not timer.running  # the 2nd and 3rd draws follow a tick


def test_stop_after_the_loop_has_shut_down_does_not_start_it_again():
    """A widget closed by the garbage collector at exit stops its timer after nbws's exit handler
    stopped the loop: starting a thread then would hang the interpreter's exit."""
    timer = RedrawTimer(Drawer(until=10**9))
    timer.refresh()
    settled()
    assert timer.running
    nbws_loop.shutdown()
    timer.stop()
    assert not timer.running
    assert "nbws-loop" not in [thread.name for thread in threading.enumerate()]
