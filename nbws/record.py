"""``nbws record URL --out DIR``: a feed captured into an archive, headless, outside any kernel.

The connection is an ordinary ``nbws.connect(url, archive=DIR, reconnect=True)``: the same
store, the same archive layout (``nbws.archive``) that ``nbws.read`` and DuckDB read. ``--send``
messages go out on every open (subscriptions survive reconnects). SIGTERM and Ctrl-C close the
connection and write everything received; SIGKILL loses at most the open file (one rotation).
The exit status says why it stopped (``EXIT_CODES``).
"""

from __future__ import annotations

import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

__all__ = ["Recording", "record", "run", "parse_header", "EXIT_CODES"]

OK, ARCHIVE_FAILED, USAGE, NEVER_OPENED, CLOSED_BY_SERVER = 0, 1, 2, 3, 4
EXIT_CODES = {
    OK: "stopped as asked (SIGTERM, Ctrl-C, --duration) or the server ended the stream with 1000; "
    "everything received is in the archive",
    ARCHIVE_FAILED: "some rows could not be written to the archive (the messages above say why)",
    USAGE: "a mistake in the command line",
    NEVER_OPENED: "the connection could not be opened and will not be retried (HTTP 401/403, a bad host)",
    CLOSED_BY_SERVER: "the server closed the connection with an error code, or it dropped and "
    "--no-reconnect was given",
}
# Progress: how often the line is redrawn on a terminal, and written otherwise (a log file).
TTY_REFRESH = 1.0
LOG_REFRESH = 10.0


def parse_header(text: str) -> tuple[str, str]:
    """``"K: V"`` as ``("K", "V")``; ValueError with what to write otherwise."""
    name, colon, value = text.partition(":")
    if not colon or not name.strip():
        raise ValueError(f"-H takes 'Name: value', not {text!r}")
    return name.strip(), value.strip()


@dataclass
class Recording:
    """What ``nbws record`` was asked to do (see ``nbws record --help``)."""

    url: str
    out: Path
    sends: list[str] = field(default_factory=list)
    headers: list[tuple[str, str]] = field(default_factory=list)
    reconnect: bool = True
    rotate: float = 60.0
    duration: float | None = None


class _Progress:
    """The one-line progress display (tqdm): rows, rate, files, reconnects, state."""

    def __init__(self, stream: TextIO) -> None:
        from tqdm import tqdm

        tty = stream.isatty()
        self._bar = tqdm(
            file=stream,
            unit=" rows",
            bar_format="nbws record: {n:,} rows, {rate_fmt}{postfix}",
            mininterval=TTY_REFRESH if tty else LOG_REFRESH,
            dynamic_ncols=tty,
        )
        self._seen = 0

    def update(self, stats: dict[str, Any], state: str) -> None:
        files, reconnects = stats.get("archive_files", 0), stats["reconnects"]
        self._bar.set_postfix_str(f"{files} files, {reconnects} reconnects, {state}", refresh=False)
        received = stats["received"]
        self._bar.update(received - self._seen)
        self._seen = received

    def write(self, line: str) -> None:
        """A line of its own, above the progress line."""
        self._bar.write(line, file=self._bar.fp)

    def close(self) -> None:
        self._bar.close()


def _state(ws: Any, stats: dict[str, Any]) -> str:
    if stats["reconnecting"]:
        return f"reconnecting (attempt {stats['attempts'] + 1})"
    return ws.ready_state.name.lower()


def record(job: Recording, stop: threading.Event, stream: TextIO = sys.stderr) -> int:
    """Record until ``stop`` is set, ``job.duration`` passes or the connection ends for good;
    returns the exit status. Progress and the final summary go to ``stream``."""
    import nbws

    failures: list[str] = []
    progress = _Progress(stream)

    def on_error(event: Any) -> None:
        if isinstance(event.error, nbws.ArchiveError):
            failures.append(event.message)
            progress.write(event.message)

    def subscribe(event: Any) -> None:
        for message in job.sends:
            ws.send(message)

    ws = nbws.connect(
        job.url,
        name="record",
        headers=job.headers,
        reconnect=job.reconnect,
        archive=job.out,
        archive_every=job.rotate,
        open_timeout=10.0,
    )
    ws.add_event_listener("error", on_error)
    ws.add_event_listener("open", subscribe)
    deadline = None if job.duration is None else time.monotonic() + job.duration
    why = "stopped"
    try:
        while not stop.wait(TTY_REFRESH):
            stats = ws.stats
            progress.update(stats, _state(ws, stats))
            if ws.closed:
                break
            if deadline is not None and time.monotonic() >= deadline:
                why = f"stopped after {job.duration:g}s"
                break
    finally:
        ws.close()  # waits until every row received is written
        stats = ws.stats
        progress.update(stats, _state(ws, stats))
        progress.close()
    summary = f"{stats['archived']:,} rows in {stats['archive_files']} files at {job.out}"
    status = OK
    close = ws.close_event
    if why == "stopped" and not stop.is_set() and close is not None:  # it ended by itself
        try:
            ws.wait_open(0)
        except nbws.ConnectError as exc:
            why, status = f"could not connect: {exc}", NEVER_OPENED
        else:
            reason = f" {close.reason}" if close.reason else ""
            if close.code == 1000:
                why = f"the server ended the stream (1000{reason})"
            else:
                why, status = f"the connection closed with {close.code}{reason}", CLOSED_BY_SERVER
    print(f"nbws record: {why}; {summary}", file=stream, flush=True)
    return ARCHIVE_FAILED if failures else status


def run(job: Recording) -> int:
    """``nbws record``: record until SIGTERM, Ctrl-C, ``--duration`` or the end of the stream."""
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return record(job, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
