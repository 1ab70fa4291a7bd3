"""The one background thread that runs every nbws connection.

Connections never live on the kernel's own event loop: that loop is frozen while a synchronous
cell runs, and differs between ipykernel 7 subshells. This thread's loop keeps receiving while
cells run, sleep or fail. It is a daemon thread, started on first use and stopped at exit.
"""

from __future__ import annotations

import asyncio
import atexit

# concurrent.futures.thread, imported now on the importing thread: its first import registers an
# exit hook, which fails once the interpreter has begun to exit ("can't register atexit after
# shutdown"), and pandas and pyarrow import it lazily, on this module's loop thread too, where
# that can happen while a script ends.
import concurrent.futures.thread
import sys
import threading
import traceback
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = [
    "get_loop",
    "in_loop_thread",
    "submit",
    "call_soon",
    "call_soon_if_running",
    "spawn",
    "on_shutdown",
    "on_death",
    "shutdown",
]

T = TypeVar("T")

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_before_shutdown: list[Callable[[], None]] = []
_on_death: list[Callable[[BaseException], None]] = []
# Tasks started with spawn(): asyncio keeps only weak references to running tasks.
_tasks: set[asyncio.Task] = set()


def get_loop() -> asyncio.AbstractEventLoop:
    """The running background loop, started on first call."""
    global _loop, _thread
    loop = _loop
    if loop is not None and _thread is not None and _thread.is_alive():
        return loop
    with _lock:
        if _loop is None or _thread is None or not _thread.is_alive():
            # A loop of our own, whatever the event loop policy says: never the kernel's. (If the
            # user applied nest_asyncio it patches this class too; that is tested to keep working.)
            new_loop = asyncio.SelectorEventLoop()
            started = threading.Event()
            thread = threading.Thread(target=_run, args=(new_loop, started), name="nbws-loop", daemon=True)
            thread.start()
            started.wait()
            _loop, _thread = new_loop, thread
        return _loop


def _run(loop: asyncio.AbstractEventLoop, started: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(started.set)
    try:
        loop.run_forever()
    except BaseException as exc:  # noqa: BLE001 - SystemExit or a bug in a callback: say so, everywhere
        _died(exc)  # the hooks abort this loop's connections, from this thread
        try:  # let the aborted transports close their sockets; the connections are CLOSED by now
            loop.run_until_complete(asyncio.sleep(0.01))
        except BaseException:  # noqa: BLE001 - dying anyway
            traceback.print_exc()
    finally:
        try:
            _cancel_pending(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            loop.close()


def _cancel_pending(loop: asyncio.AbstractEventLoop) -> None:
    """Cancel the tasks still running (a close handshake a peer never answers) and let them
    unwind, so that no generator is torn down mid-step."""
    pending = asyncio.all_tasks(loop)
    for task in pending:
        task.cancel()
    if pending:
        loop.run_until_complete(asyncio.wait(pending, timeout=1.0))


def _died(exc: BaseException) -> None:
    """The loop stopped on an exception: print it, and let every connection report it."""
    global _loop, _thread
    with _lock:
        _loop = _thread = None  # the next get_loop() starts a new thread
    traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.stderr)
    print(f"nbws: the loop thread died ({exc!r}); open connections again", file=sys.stderr)
    for fn in list(_on_death):
        try:
            fn(exc)
        except Exception:  # noqa: BLE001 - report what can be reported
            traceback.print_exc()


def in_loop_thread() -> bool:
    """True when called from the nbws loop thread (for example inside a listener)."""
    return _thread is not None and threading.current_thread() is _thread


def submit(coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
    """Schedule ``coro`` on the loop thread; the caller gets a concurrent future."""
    return asyncio.run_coroutine_threadsafe(coro, get_loop())


def call_soon(fn: Callable[..., Any], *args: Any) -> None:
    """Run ``fn(*args)`` on the loop thread soon (thread-safe)."""
    get_loop().call_soon_threadsafe(fn, *args)


def call_soon_if_running(fn: Callable[..., Any], *args: Any) -> bool:
    """Like ``call_soon``, but never starts the loop: False, and nothing scheduled, when it does
    not run. For clean-ups, which may run at exit (a widget closed by the garbage collector after
    ``shutdown()``, when a new thread could never start)."""
    loop, thread = _loop, _thread
    if loop is None or thread is None or not thread.is_alive():
        return False
    try:
        loop.call_soon_threadsafe(fn, *args)
    except RuntimeError:  # closed meanwhile
        return False
    return True


def spawn(coro: Coroutine[Any, Any, Any]) -> asyncio.Task:
    """Start ``coro`` as a task on the loop thread (call there), keeping it alive until done."""
    task = asyncio.ensure_future(coro)
    _tasks.add(task)
    task.add_done_callback(_tasks.discard)
    return task


def on_death(fn: Callable[[BaseException], None]) -> None:
    """Register ``fn(exc)`` to run in the dying thread if the loop thread dies on ``exc``; its loop
    is stopped (not closed) then, so ``fn`` may act on the loop's objects directly."""
    _on_death.append(fn)


def on_shutdown(fn: Callable[[], None]) -> None:
    """Register ``fn`` to run (in the calling thread) before the loop stops at exit."""
    _before_shutdown.append(fn)


def shutdown(timeout: float = 5.0) -> None:
    """Run the shutdown hooks, stop the loop and join its thread. Safe to call twice."""
    global _loop, _thread
    for fn in list(_before_shutdown):
        try:
            fn()
        except Exception:  # noqa: BLE001 - exiting; nothing more useful to do
            pass
    with _lock:
        loop, thread = _loop, _thread
        _loop = _thread = None
    if loop is None or thread is None or not thread.is_alive():
        return
    loop.call_soon_threadsafe(loop.stop)
    thread.join(timeout)


atexit.register(shutdown)
