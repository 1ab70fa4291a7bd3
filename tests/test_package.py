"""The nbws package: public namespace and core purity."""

from __future__ import annotations

import importlib.util
import pkgutil
import subprocess
import sys

import nbws

FRONT_ENDS = {"magics", "panel", "chart", "__main__"}  # the only modules that may import IPython/ipywidgets
# Core modules of an optional extra, and the package the extra installs.
EXTRAS = {"picowstransport": "picows"}


def test_importing_nbws_leaves_ipython_ipywidgets_traitlets_out():
    """No core module imports IPython, ipywidgets or traitlets (every one of them imported in a
    fresh interpreter)."""
    core = sorted(m.name for m in pkgutil.iter_modules(nbws.__path__) if m.name not in FRONT_ENDS)
    assert {"client", "state", "connection", "dispatch", "transport", "registry"} <= set(core)
    core = [m for m in core if m not in EXTRAS or importlib.util.find_spec(EXTRAS[m])]  # (its extra)
    code = (
        f"import sys, importlib; [importlib.import_module('nbws.' + m) for m in {core!r}];"
        "import nbws; ws = nbws.WebSocket('ws://127.0.0.1:9/');"
        "bad = [m for m in ('IPython', 'ipywidgets', 'traitlets', 'ipykernel', 'nest_asyncio')"
        " if m in sys.modules];"
        "print(bad)"
    )
    assert python_prints(code) == ["[]"]


def python_prints(code: str) -> list[str]:
    """The lines ``code`` prints in a fresh interpreter (which must exit 0)."""
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout.splitlines()


def test_public_names():
    """The design's names are all there, in __all__."""
    for name in (
        "WebSocket connect connections close_all CONNECTING OPEN CLOSING CLOSED "
        "OpenEvent MessageEvent CloseEvent ErrorEvent NbwsError ConnectError "
        "ConnectionClosedError JSONDecodeError LiveChart"
    ).split():
        assert name in nbws.__all__
        assert hasattr(nbws, name)
    assert (nbws.CONNECTING, nbws.OPEN, nbws.CLOSING, nbws.CLOSED) == (0, 1, 2, 3)


def test_pandas_waits_for_the_first_frame():
    """import nbws, and a store that received a few messages and answered for them, leave
    pandas (and numpy, pyarrow) unimported; the first chunk sealed imports them."""
    code = (
        "import sys\n"
        "from nbws.store import MessageStore\n"
        "import nbws\n"
        "heavy = lambda: [m for m in ('pandas', 'numpy', 'pyarrow') if m in sys.modules]\n"
        "store = MessageStore(chunk_size=4)\n"
        'for i in range(3): store.append(\'{"a": {"b": %d}}\' % i, i)\n'
        "rows, events, before = store.recent_rows(2), store.messages(), heavy()\n"
        "store.append('{}', 3)\n"
        "print(before); print(rows); print(len(events)); print(heavy())\n"
    )
    before, rows, events, after = python_prints(code)
    assert before == "[]"  # nothing heavy yet, though the log already answers
    assert rows == "[(1, {'a.b': 1}), (2, {'a.b': 2})]" and events == "3"
    assert "'pandas'" in after  # the first sealed chunk imported it
