"""The live panel: a standard-ipywidgets view of a connection that stays responsive at any rate.

The panel never redraws per message. A timer on nbws's loop thread looks at the connection a few
times a second and assigns the few traits that changed (trait assignment from a thread reaches
the frontend; ``with output:`` would not). Every assignment is one comm message on IOPub, so the
panel counts them and their bytes and never sends more than ``MAX_UPDATES_PER_SECOND`` updates or
``MAX_BYTES_PER_SECOND`` bytes in any second: a 100k msg/s stream of 64 KB messages costs the
frontend what a 10 msg/s one of small ticks does. What a redraw costs is bounded by what it
shows: each message is rendered once, as one cut line, when it first appears in the log; the
frame's tail is ``ws.tail``, a few rows. The style is sent once. All message text is escaped.
"""

from __future__ import annotations

import html
import time
from datetime import UTC, datetime
from typing import Any

import ipywidgets as widgets

from .budget import UpdateBudget
from .errors import ConnectError, ConnectionClosedError
from .jsontext import dumps, loads, parse_json_payload, pretty
from .redact import redact_url
from .redraw import TICK_SECONDS, RedrawTimer
from .state import CLOSED, CONNECTING

__all__ = ["Panel", "MAX_UPDATES_PER_SECOND", "TICK_SECONDS"]

MAX_UPDATES_PER_SECOND = 20
MAX_BYTES_PER_SECOND = 100_000  # of widget data on IOPub
UPDATE_OVERHEAD = 120  # bytes of a widget update's comm message besides the value
LOG_SIZE = 50
TAIL_ROWS = 5
LINE_CHARS = 200  # of one message's line in the log
MAX_CHARS = 2_000  # of one message's pretty form (shown when the view is paused)
CELL_CHARS = 40  # of one cell of the frame's tail
TAIL_COLUMNS = 12  # of the frame's tail
HEX_PREVIEW = 32  # bytes of a binary message shown

_BADGE_COLORS = {
    "connecting": "#b26a00",
    "reconnecting": "#b26a00",
    "open": "#1b7f3b",
    "closing": "#b26a00",
    "closed": "#555",
    "failed": "#b3261e",
}

_STYLE = """<style>
.nbws-head{font-family:var(--jp-ui-font-family,sans-serif);font-size:13px;line-height:1.6}
.nbws-badge{color:#fff;border-radius:9px;padding:1px 8px;font-size:12px;font-weight:600}
.nbws-counters span{margin-right:14px;color:var(--jp-ui-font-color1,#222)}
.nbws-counters b{font-weight:600}
.nbws-body,.nbws-body .widget-html-content{min-width:0;width:100%;overflow:hidden;line-height:18px}
.nbws-log{display:flex;flex-direction:column-reverse;height:240px;overflow:auto;
  box-sizing:border-box;border:1px solid var(--jp-border-color2,#ddd);border-radius:4px;
  padding:2px 6px;background:var(--jp-layout-color1,#fff)}
.nbws-msg{display:flex;gap:10px;border-bottom:1px solid var(--jp-border-color3,#eee);padding:1px 0}
.nbws-msg code,.nbws-msg summary{flex:1;min-width:0;white-space:nowrap;overflow:hidden;
  text-overflow:ellipsis;padding:0;background:none;line-height:18px;
  font-family:var(--jp-code-font-family,monospace);font-size:12px}
.nbws-msg details{flex:1;min-width:0}
.nbws-msg pre{margin:2px 0;white-space:pre-wrap;overflow-wrap:anywhere;max-height:200px;
  overflow:auto;font-family:var(--jp-code-font-family,monospace);font-size:12px}
.nbws-msg .nbws-meta{flex:none;width:10em;padding-top:1px}
.nbws-meta{font-size:11px;color:var(--jp-ui-font-color2,#666);white-space:nowrap}
.nbws-out .nbws-meta{color:#1a5fb4}
.nbws-tail{font-size:11px;height:150px;overflow:auto;margin-top:6px}
.nbws-tail table{border-collapse:collapse}
.nbws-tail td,.nbws-tail th{padding:1px 6px;border-bottom:1px solid var(--jp-border-color3,#eee);
  white-space:nowrap;text-align:left;font-weight:normal}
.nbws-tail thead th{font-weight:600}
.nbws-empty{color:var(--jp-ui-font-color2,#888);font-size:12px;padding:4px 0}
</style>"""


def _human_bytes(n: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n} B"  # pragma: no cover


def _clock(time_ns: int) -> str:
    return datetime.fromtimestamp(time_ns / 1e9, tz=UTC).strftime("%H:%M:%S.%f")[:-3]


def _size(data: str | bytes) -> int:
    return len(data) if isinstance(data, bytes) else len(data.encode(errors="surrogatepass"))


def describe(data: str | bytes) -> str:
    """One message on one line (plain text; the caller escapes it): JSON compact, text with
    its line breaks shown as ``⏎``, binary as hex; cut at ``LINE_CHARS`` with the size shown."""
    if isinstance(data, bytes):
        preview = data[:HEX_PREVIEW].hex(" ")
        more = " …" if len(data) > HEX_PREVIEW else ""
        return f"binary, {len(data)} bytes: {preview}{more}"
    try:
        text = dumps(loads(data))
    except (ValueError, TypeError):  # not JSON, or JSON orjson cannot write back (NaN)
        text = data.replace("\r\n", "\n").replace("\n", " ⏎ ")
    if len(text) <= LINE_CHARS:
        return text
    return f"{text[:LINE_CHARS]} … ({_human_bytes(_size(data))} in all)"


def describe_in_full(data: str | bytes) -> str | None:
    """The pretty form of a message (indented JSON, cut at ``MAX_CHARS``), or None when its one
    line (``describe``) already shows all of it."""
    if isinstance(data, bytes):
        return None
    try:
        value = loads(data)
        text, line = pretty(value), dumps(value)
    except (ValueError, TypeError):
        text = line = data
    if len(line) <= LINE_CHARS and "\n" not in line:
        return None
    if len(text) <= MAX_CHARS:
        return text
    return f"{text[:MAX_CHARS]} … ({len(text) - MAX_CHARS:,} more characters)"


def _escape(text: str) -> str:
    """Text made safe inside an element: ``<``, ``>``, ``&`` (quotes need no escaping there)."""
    return html.escape(text, quote=False)


def _entry(direction: str, time_ns: int, data: str | bytes, expandable: bool = False) -> str:
    """One log entry: a line; with ``expandable``, a line that opens onto the pretty form."""
    arrow, css = ("↑ out", "nbws-msg nbws-out") if direction == "out" else ("↓ in", "nbws-msg")
    meta = f'<div class="nbws-meta">{arrow} {_clock(time_ns)}</div>'
    line = _escape(describe(data))
    full = describe_in_full(data) if expandable else None
    if full is None:
        return f'<div class="{css}">{meta}<code>{line}</code></div>'
    details = f"<details><summary>{line}</summary><pre>{_escape(full)}</pre></details>"
    return f'<div class="{css}">{meta}{details}</div>'


def _cell(value: Any) -> str:
    """A cell of the frame's tail as text, cut at ``CELL_CHARS`` characters (not escaped)."""
    if value is None:
        return ""
    if isinstance(value, (list, dict)):
        try:
            value = dumps(value)
        except TypeError:
            value = str(value)
    elif isinstance(value, float):
        value = repr(value)
    else:
        value = str(value)
    return value if len(value) <= CELL_CHARS else value[: CELL_CHARS - 1] + "…"


def _tail_html(rows: list[tuple[int, dict]]) -> str:
    """The frame's newest rows as an HTML table: ``TAIL_COLUMNS`` columns at most, cells cut."""
    names = list(dict.fromkeys(name for _, row in rows for name in row))
    more = len(names) - TAIL_COLUMNS
    names = names[:TAIL_COLUMNS]
    head = "".join(f"<th>{_escape(_cell(name))}</th>" for name in names)
    head += f"<th>… {more} more</th>" if more > 0 else ""
    body = "".join(
        f"<tr><th>{_clock(time_ns)}</th>"
        + "".join(f"<td>{_escape(_cell(row.get(name)))}</td>" for name in names)
        + ("<td></td>" if more > 0 else "")
        + "</tr>"
        for time_ns, row in rows
    )
    return f"<table><thead><tr><th>received_at (UTC)</th>{head}</tr></thead><tbody>{body}</tbody></table>"


class Panel(widgets.VBox):
    """The panel of one connection: status, counters, controls, newest messages, frame tail.

    Get it with ``ws.panel()`` (or by displaying ``ws``); the same panel shown twice shows the
    same live state. Its timer stops once the connection is closed and the final state shown.
    """

    def __init__(self, ws: Any, log_size: int = LOG_SIZE) -> None:
        self.ws = ws
        self.log_size = log_size
        self.paused = False
        self._cleared = (0, 0)  # (seq, time_ns): the view shows only what came after
        self._frozen: str | None = None  # the log while paused
        self._budget = UpdateBudget(MAX_UPDATES_PER_SECOND, MAX_BYTES_PER_SECOND)
        self._timer = RedrawTimer(self._draw)
        self._rendered: dict[tuple[str, int], str] = {}
        self.style = widgets.HTML(_STYLE)  # sent once, not with every status
        self.status = widgets.HTML()
        # The log's lines do not wrap: the body must take the panel's width, not its content's.
        self.body = widgets.HTML(layout=widgets.Layout(width="100%"))
        self.body.add_class("nbws-body")
        self.pause_button = widgets.Button(description="Pause", icon="pause", tooltip="pause the view")
        self.clear_button = widgets.Button(description="Clear", icon="eraser", tooltip="clear the view")
        self.close_button = widgets.Button(description="Close", icon="times", tooltip="close the connection")
        self.reconnect_button = widgets.Button(description="Reconnect", icon="refresh", tooltip="open again")
        self.editor = widgets.Textarea(
            placeholder='{"type": "subscribe"}  or any text',
            layout=widgets.Layout(width="100%", height="64px"),
        )
        self.send_json_button = widgets.Button(description="Send JSON", button_style="primary")
        self.send_text_button = widgets.Button(description="Send text")
        self.send_status = widgets.HTML()
        self.pause_button.on_click(lambda _: self.toggle_pause())
        self.clear_button.on_click(lambda _: self.clear())
        self.close_button.on_click(lambda _: self._act(self.ws.close))
        self.reconnect_button.on_click(lambda _: self._act(self.ws.reconnect))
        self.send_json_button.on_click(lambda _: self.send(as_json=True))
        self.send_text_button.on_click(lambda _: self.send(as_json=False))
        controls = widgets.HBox(
            [self.pause_button, self.clear_button, self.close_button, self.reconnect_button]
        )
        sender = widgets.HBox(
            [self.editor, widgets.VBox([self.send_json_button, self.send_text_button])],
            layout=widgets.Layout(width="100%"),
        )
        super().__init__(
            [self.style, self.status, controls, self.body, sender, self.send_status],
            layout=widgets.Layout(border="1px solid #ccc", padding="6px", width="100%"),
        )
        # Redraw on every state change: a reopened connection restarts the stopped timer.
        ws.add_state_hook(self.refresh)
        self.refresh()

    def __repr__(self) -> str:
        return f"<nbws.Panel of {self.ws!r}>"

    # -- user actions (kernel thread) --------------------------------------------------------

    def toggle_pause(self) -> None:
        """Freeze or unfreeze the view of messages; receiving goes on."""
        self.paused = not self.paused
        self._frozen = None  # paused: drawn once more, with each message expandable
        self.pause_button.description = "Resume" if self.paused else "Pause"
        self.pause_button.icon = "play" if self.paused else "pause"
        self.refresh()

    def clear(self) -> None:
        """Empty the view of messages (the connection keeps everything it received)."""
        self._cleared = (self.ws.stats["received"], time.time_ns())
        self._frozen = None
        self.refresh()

    def send(self, as_json: bool) -> None:
        """Send the editor's text; JSON is checked first and errors are shown, not sent."""
        text = self.editor.value
        if as_json:
            try:
                text = parse_json_payload(text)  # as JSON.parse reads it: no NaN, no Infinity
            except ValueError as exc:
                self._say(f"Not sent: {exc}", error=True)
                return
        try:
            self.ws.send(text)
        except (ConnectionClosedError, ConnectError, TimeoutError) as exc:
            self._say(f"Not sent: {exc}", error=True)
            return
        self._say(f"Sent {'JSON' if as_json else 'text'} ({len(text.encode())} bytes)", error=False)
        self.refresh()

    def _act(self, action: Any) -> None:
        try:
            action()
        except Exception as exc:  # noqa: BLE001 - shown in the panel, where the click was
            self._say(f"{type(exc).__name__}: {exc}", error=True)
        self.refresh()

    def _say(self, message: str, error: bool) -> None:
        color = "#b3261e" if error else "#1b7f3b"
        self.send_status.value = f'<span style="color:{color};font-size:12px">{html.escape(message)}</span>'

    # -- drawing (loop thread) ---------------------------------------------------------------

    @property
    def timer_running(self) -> bool:
        """True while the panel keeps redrawing; False once a closed connection is fully shown."""
        return self._timer.running

    def refresh(self) -> None:
        """Redraw now-ish (thread-safe) and keep the timer going while there is anything to show."""
        self._timer.refresh()

    def _draw(self) -> bool:
        """Assign what changed, within the update budget; True once the final state is shown."""
        stats = self.ws.stats
        changes = [
            (self.status, "value", self._status_html(stats)),
            (self.body, "value", self._body_html()),
            (self.close_button, "disabled", self.ws.ready_state == CLOSED),
        ]
        changes = [(w, name, value) for w, name, value in changes if getattr(w, name) != value]
        # What each update weighs on IOPub: its value as JSON in UTF-8 (the log's arrows and
        # ellipses are 3 bytes each), plus the comm message around it.
        sizes = [len(dumps(value).encode()) + UPDATE_OVERHEAD for _, _, value in changes]
        now = time.monotonic()
        if not self._budget.allows(now, sizes):
            return False  # over budget: try again on the next tick
        for widget, name, value in changes:
            setattr(widget, name, value)
        # Charged when sent, not when allowed: so no second of sends, as IOPub sees them, holds
        # more than the budget (sending takes a moment).
        self._budget.spend(time.monotonic(), sizes)
        # The timer may stop once closed and drawn: nothing will change without a user action.
        return not changes and self.ws.ready_state == CLOSED

    def _badge(self, stats: dict) -> tuple[str, str]:
        ws = self.ws
        state = ws.ready_state
        if state == CLOSED:
            close = ws.close_event
            if close is None:
                return "closed", "closed"
            reason = f" {close.reason}" if close.reason else ""
            kind = "closed" if close.was_clean else "failed"
            return kind, f"closed {close.code}{reason}"
        if state == CONNECTING and (stats["reconnecting"] or stats["reconnects"]):
            attempts = stats["attempts"]
            return "reconnecting", f"reconnecting (attempt {attempts + 1})" if attempts else "reconnecting"
        return state.name.lower(), state.name.lower()

    def _status_html(self, stats: dict) -> str:
        ws = self.ws
        kind, label = self._badge(stats)
        badge = (
            f'<span class="nbws-badge" style="background:{_BADGE_COLORS[kind]}">{html.escape(label)}</span>'
        )
        paused = (
            ' <span class="nbws-badge" style="background:#6750a4">view paused</span>' if self.paused else ""
        )
        counters = [
            ("received", f"{stats['received']:,}"),
            ("sent", f"{stats['sent']:,}"),
            ("in", _human_bytes(stats["bytes_received"])),
            ("out", _human_bytes(stats["bytes_sent"])),
            ("msgs/s", f"{stats['rate']:,.0f}"),
            ("parse errors", f"{stats['parse_errors']:,}"),
            ("listener errors", f"{stats['listener_errors']:,}"),
        ]
        if stats["reconnects"]:
            counters.append(("reconnects", f"{stats['reconnects']:,}"))
        items = "".join(f"<span>{name} <b>{value}</b></span>" for name, value in counters)
        return (
            f'<div class="nbws-head"><b>{html.escape(ws.name)}</b> '
            f"<code>{html.escape(redact_url(ws.url))}</code> {badge}{paused}"
            f'<div class="nbws-counters">{items}</div></div>'
        )

    def _body_html(self) -> str:
        if self.paused and self._frozen is not None:
            return self._frozen
        ws = self.ws
        cleared_seq, cleared_ns = self._cleared
        entries = [
            (int(e.received_at.timestamp() * 1e9), ("in", e.seq), e.data)
            for e in ws.recent(self.log_size, after=cleared_seq)
        ]
        entries += [(t, ("out", t), data) for t, data in ws.recent_sent(self.log_size, after_ns=cleared_ns)]
        entries.sort(key=lambda entry: entry[0])
        entries = entries[-self.log_size :]
        if self.paused:  # drawn once while paused: each message opens onto its pretty form
            rendered = [_entry(key[0], t, data, expandable=True) for t, key, data in entries]
        else:  # each message rendered once, when it first shows
            cache = self._rendered
            rendered = []
            for t, key, data in entries:
                if key not in cache:
                    cache[key] = _entry(key[0], t, data)
                rendered.append(cache[key])
            if len(cache) > 4 * self.log_size:
                keep = {key for _, key, _ in entries}
                self._rendered = {k: v for k, v in cache.items() if k in keep}
        # newest first in the DOM: shown last (column-reverse), scrolled into view
        log = "".join(reversed(rendered)) or '<div class="nbws-empty">no messages yet</div>'
        body = f'<div class="nbws-log">{log}</div>'
        rows = ws.recent_rows(TAIL_ROWS)
        if rows:
            count = "row" if len(rows) == 1 else f"{len(rows)} rows"
            caption = f'<div class="nbws-meta">ws.frame, last {count}</div>'
            body += f'<div class="nbws-tail">{caption}{_tail_html(rows)}</div>'
        self._frozen = body
        return body
