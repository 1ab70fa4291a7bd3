"""nbws.errors: the exception tree."""

from __future__ import annotations

import nbws


def test_error_tree():
    """Every nbws error is an NbwsError; JSONDecodeError is also a ValueError."""
    assert issubclass(nbws.ConnectError, nbws.NbwsError)
    assert issubclass(nbws.ConnectionClosedError, nbws.NbwsError)
    assert issubclass(nbws.JSONDecodeError, nbws.NbwsError)
    assert issubclass(nbws.JSONDecodeError, ValueError)


def test_errors_carry_context():
    """ConnectError knows the URL and status; ConnectionClosedError the close code and reason."""
    error = nbws.ConnectError("refused", url="ws://127.0.0.1:1/", status=403)
    assert (str(error), error.url, error.status) == ("refused", "ws://127.0.0.1:1/", 403)
    closed = nbws.ConnectionClosedError("closed", code=4000, reason="bye")
    assert (closed.code, closed.reason) == (4000, "bye")
