"""A real IPython kernel for tests, driven with jupyter_client; records every IOPub message."""

from __future__ import annotations

import json
import queue
import sys
import time
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager


class Kernel:
    """Starts an ipykernel of this interpreter; ``run`` executes a cell and returns its outputs."""

    def __init__(self, workdir: Path) -> None:
        spec_dir = workdir / "kernels" / "nbws-test"
        spec_dir.mkdir(parents=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec_dir / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "nbws test", "language": "python"})
        )
        specs = KernelSpecManager(kernel_dirs=[str(workdir / "kernels")])
        self.manager = KernelManager(kernel_name="nbws-test", kernel_spec_manager=specs)
        self.manager.start_kernel(cwd=str(workdir))
        self.client = self.manager.client()
        self.client.start_channels()
        self.client.wait_for_ready(timeout=60)
        self.iopub: list[dict] = []

    def submit(self, code: str, stop_on_error: bool = True) -> str:
        """Queue a cell without waiting (as Run All does); returns its msg_id."""
        return self.client.execute(code, store_history=True, stop_on_error=stop_on_error)

    def wait(self, msg_ids: list[str], timeout: float = 30) -> None:
        """Read IOPub until every cell in ``msg_ids`` went idle."""
        pending = set(msg_ids)
        deadline = time.monotonic() + timeout
        while pending:
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"cells still busy after {timeout}s: {self.stream_text()}"
            try:
                msg = self.client.get_iopub_msg(timeout=remaining)
            except queue.Empty:
                continue
            self.iopub.append(msg)
            if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
                pending.discard(msg["parent_header"].get("msg_id"))

    def drain(self, seconds: float) -> None:
        """Collect IOPub messages for a while (output that arrives after a cell finished)."""
        deadline = time.monotonic() + seconds
        while (remaining := deadline - time.monotonic()) > 0:
            try:
                self.iopub.append(self.client.get_iopub_msg(timeout=remaining))
            except queue.Empty:
                pass

    def reply(self, msg_id: str, timeout: float = 30) -> dict:
        """The execute_reply of a cell."""
        while True:
            msg = self.client.get_shell_msg(timeout=timeout)
            if msg["parent_header"].get("msg_id") == msg_id:
                return msg["content"]

    def run(self, code: str, timeout: float = 30) -> str:
        """Execute a cell, assert it succeeded, and return its stream output."""
        msg_id = self.submit(code)
        self.wait([msg_id], timeout)
        reply = self.reply(msg_id)
        if reply["status"] == "aborted":  # ipykernel 6 aborts a cell sent just after an error
            msg_id = self.submit(code)
            self.wait([msg_id], timeout)
            reply = self.reply(msg_id)
        assert reply["status"] == "ok", f"{reply.get('ename')}: {reply.get('evalue')}"
        return self.stream_text(msg_id)

    def wait_for_output(self, msg_id: str, text: str, timeout: float = 10) -> None:
        """Read IOPub until the running cell ``msg_id`` printed ``text`` (bounded by ``timeout``)."""
        deadline = time.monotonic() + timeout
        while text not in self.stream_text(msg_id):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"no {text!r} from the cell within {timeout}s"
            try:
                self.iopub.append(self.client.get_iopub_msg(timeout=remaining))
            except queue.Empty:
                pass

    def fail(self, code: str, timeout: float = 30) -> str:
        """Execute a cell that must fail; returns "EName: value" (and checks no traceback shows)."""
        # Its error must not abort the next cell: ipykernel 6 aborts requests that arrive within
        # a moment of an error (status "aborted") when the failing one asked to stop on error.
        msg_id = self.submit(code, stop_on_error=False)
        self.wait([msg_id], timeout)
        reply = self.reply(msg_id)
        assert reply["status"] == "error", f"expected an error from: {code}; reply: {reply}"
        shown = self.stream_text(msg_id) + "".join("".join(e["traceback"]) for e in self.errors(msg_id))
        if reply["ename"] == "UsageError":
            assert "Traceback" not in shown, shown
        return f"{reply['ename']}: {reply['evalue']}"

    def displayed(self, msg_id: str) -> list[str]:
        """The text/plain of what a cell displayed or returned."""
        return [
            m["content"]["data"].get("text/plain", "")
            for m in self.iopub
            if m["msg_type"] in ("display_data", "execute_result")
            and m["parent_header"].get("msg_id") == msg_id
        ]

    def stream_text(self, msg_id: str | None = None, name: str | None = None) -> str:
        """What cells printed (one cell's if ``msg_id``; only stdout/stderr if ``name``)."""
        return "".join(
            m["content"]["text"]
            for m in self.iopub
            if m["msg_type"] == "stream"
            and (msg_id is None or m["parent_header"].get("msg_id") == msg_id)
            and (name is None or m["content"]["name"] == name)
        )

    def errors(self, msg_id: str | None = None) -> list[dict]:
        return [
            m["content"]
            for m in self.iopub
            if m["msg_type"] == "error" and (msg_id is None or m["parent_header"].get("msg_id") == msg_id)
        ]

    def shutdown(self) -> None:
        self.client.stop_channels()
        self.manager.shutdown_kernel(now=False)
