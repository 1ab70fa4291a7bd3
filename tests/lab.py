"""A real JupyterLab 4 or Jupyter Notebook 7 on 127.0.0.1 and headless Chromium (Debian's) driven by
Playwright, for tests."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
ARTIFACTS = Path(__file__).parent.parent / "test-artifacts"
# JupyterApp's apps: the module that starts each and its traitlets class.
APPS = {"lab": ("jupyterlab", "LabApp"), "notebook": ("notebook", "JupyterNotebookApp")}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class JupyterApp:
    """A Jupyter front-end (``app``: ``"lab"`` for JupyterLab 4, ``"notebook"`` for Notebook 7)
    serving ``root`` on a free loopback port, with a token and config, data, settings and kernelspec
    of its own (in ``root.parent / "lab-home"``); ``close()`` stops it. ``expose_app`` sets
    ``window.jupyterapp`` in the page (both apps' ``expose_app_in_browser``), for tests that wait
    on the app's state, such as ``jupyterapp.status.isDirty``."""

    def __init__(self, root: Path, app: str = "lab", *, expose_app: bool = False) -> None:
        if app not in APPS:
            raise ValueError(f"app must be one of {sorted(APPS)}, not {app!r}")
        module, app_class = APPS[app]
        self.app = app
        self.root = root
        self.port = free_port()
        self.token = secrets.token_hex(16)
        home = root.parent / "lab-home"
        for sub in ("config", "data", "runtime"):
            (home / sub).mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "JUPYTER_CONFIG_DIR": str(home / "config"),
            "JUPYTER_DATA_DIR": str(home / "data"),
            "JUPYTER_RUNTIME_DIR": str(home / "runtime"),
            "JUPYTERLAB_SETTINGS_DIR": str(home / "settings"),
            "JUPYTERLAB_WORKSPACES_DIR": str(home / "workspaces"),
        }
        # (Notebook 7 reads the same JupyterLab settings as JupyterLab does.)
        # No "get Jupyter news?" popup over what the screenshot should show.
        news = home / "settings" / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True, exist_ok=True)
        (news / "notification.jupyterlab-settings").write_text(json.dumps({"fetchNews": "false"}))
        # Every cell in the DOM (no virtual scrolling), so tests can see every output.
        tracker = home / "settings" / "@jupyterlab" / "notebook-extension"
        tracker.mkdir(parents=True, exist_ok=True)
        (tracker / "tracker.jupyterlab-settings").write_text(json.dumps({"windowingMode": "none"}))
        # The kernel is this interpreter, whatever other kernelspecs the machine has.
        spec = home / "data" / "kernels" / "python3"
        spec.mkdir(parents=True, exist_ok=True)
        argv = [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"]
        (spec / "kernel.json").write_text(
            json.dumps({"argv": argv, "display_name": "Python 3", "language": "python"})
        )
        self.log_path = root.parent / ("jupyterlab.log" if app == "lab" else f"jupyter-{app}.log")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                module,
                "--no-browser",
                "--allow-root",
                "--ServerApp.ip=127.0.0.1",
                f"--ServerApp.port={self.port}",
                "--ServerApp.port_retries=0",
                f"--IdentityProvider.token={self.token}",
                f"--ServerApp.root_dir={root}",
                "--LabApp.news_url=",
                "--LabServerApp.extra_labextensions_path=[]",
                *([f"--{app_class}.expose_app_in_browser=True"] if expose_app else []),
            ],
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self.url = f"http://127.0.0.1:{self.port}"
        deadline = time.monotonic() + 90
        while True:
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.close()
                    raise RuntimeError(f"Jupyter {app} did not start: {self.logs()[-2000:]}") from None
                time.sleep(0.5)

    def notebook_url(self, name: str) -> str:
        if self.app == "notebook":
            return f"{self.url}/notebooks/{name}?token={self.token}"
        return f"{self.url}/lab/tree/{name}?token={self.token}&reset"

    def logs(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text()

    def close(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


class JupyterLab(JupyterApp):
    """``jupyter lab`` serving ``root`` on a free loopback port, with a token; ``close()`` stops it."""

    def __init__(self, root: Path, **options) -> None:
        super().__init__(root, "lab", **options)


class JupyterNotebook(JupyterApp):
    """Jupyter Notebook 7 (``jupyter notebook``), set up as ``JupyterLab`` is; ``close()`` stops it."""

    def __init__(self, root: Path, **options) -> None:
        super().__init__(root, "notebook", **options)


def run_all_cells(page, lab: JupyterApp, name: str) -> None:
    """Open notebook ``name`` in ``lab`` (JupyterLab or Notebook 7) and choose Run > Run All Cells, as a
    user would: both front-ends have that menu, the kernel status indicator and the kernel dialog."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    page.goto(lab.notebook_url(name))
    page.wait_for_selector(".jp-Notebook-ExecutionIndicator[data-status='idle']", timeout=90_000)
    # JupyterLab sometimes asks which kernel to start before the session exists; take Python 3.
    accept = page.locator(".jp-Dialog button.jp-mod-accept")
    try:
        accept.wait_for(timeout=3_000)
        accept.click()
    except PlaywrightTimeout:
        pass
    page.get_by_role("menuitem", name="Run", exact=True).click()
    page.get_by_text("Run All Cells", exact=True).click()


def chromium_available() -> str | None:
    """Why the browser tests cannot run, or None when they can."""
    if not Path(CHROMIUM).exists() and not shutil.which("chromium"):
        return f"{CHROMIUM} is missing: scripts/test installs it with apt-get install chromium"
    try:
        import playwright  # noqa: F401
    except ImportError:
        return "playwright is missing: pip install -e '.[test]'"
    return None
