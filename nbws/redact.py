"""Hide secrets in URLs, headers and error messages before they are shown.

``repr(ws)``, the panel, the ``%ws_list`` table and error messages show a connection's URL and
headers; these functions replace what looks secret with ``***`` and keep everything else as
written. Standard library only (no IPython, ipywidgets or traitlets).

What counts as secret:

* URL userinfo: the password (``ws://user:***@host/``); when there is no password (or it is
  empty) the username is the credential (``ws://***@host/``, ``ws://***:@host/``).
* URL query parameters (and ``key=value`` pairs in a fragment) whose name, percent-decoded and
  case-insensitive, contains ``token``, ``key``, ``secret``, ``password``, ``passwd``, ``pwd``,
  ``auth``, ``session``, ``jwt``, ``credential``, ``access``, ``ticket`` or ``signature``; or has
  the word ``sig``, ``otp``, ``totp``, ``hotp``, ``pass``, ``pw`` or ``sid`` in it (``urlSig``,
  ``otp_code``; not ``signal`` nor ``footprint``); or is exactly ``code`` (OAuth's one-time
  authorization code; ``country_code`` and ``zipcode`` are kept).
* Headers ``Authorization`` and ``Proxy-Authorization`` (the scheme is kept: ``Bearer ***``),
  and every header whose name contains ``token``, ``key``, ``secret``, ``auth``, ``session``,
  ``password``, ``passwd``, ``signature``, ``credential``, ``jwt`` or ``cookie``.

Paths are never changed; blank values stay blank (there is nothing to hide).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any
from urllib.parse import unquote, unquote_plus

__all__ = ["redact_url", "redact_headers", "redact_text", "secrets_of", "MASK", "MIN_SECRET_LENGTH"]

MASK = "***"
"""What a secret is replaced with."""

MIN_SECRET_LENGTH = 4
"""``redact_text`` ignores shorter secrets, so that common words and numbers stay readable."""

_PARAM_PARTS = (
    "token",
    "key",
    "secret",
    "password",
    "passwd",
    "pwd",
    "auth",
    "session",
    "jwt",
    "credential",
    "access",
    "ticket",
    "signature",
)
_PARAM_WORDS = frozenset({"sig", "otp", "totp", "hotp", "pass", "pw", "sid"})
_PARAM_NAMES = frozenset({"code"})
_HEADER_PARTS = (
    "token",
    "key",
    "secret",
    "auth",
    "session",
    "password",
    "passwd",
    "signature",
    "credential",
    "jwt",
    "cookie",
)
_SCHEME_HEADERS = frozenset({"authorization", "proxy-authorization"})

_WORD = re.compile(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|[0-9]+")
_SEPARATOR = re.compile(r"([&;])")
_AUTHORITY_END = re.compile(r"[/?#]")
# RFC 9110 auth-scheme (a token), whitespace, then the credentials.
_AUTH_SCHEME = re.compile(r"(\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+\s+)(\S.*)", re.DOTALL)


def _secret_param(name: str) -> bool:
    """Whether a query parameter named ``name`` (as written in the URL) holds a secret."""
    name = unquote_plus(name).strip()
    lowered = name.lower()
    if lowered in _PARAM_NAMES or any(part in lowered for part in _PARAM_PARTS):
        return True
    return any(word.lower() in _PARAM_WORDS for word in _WORD.findall(name))


def _secret_header(name: str) -> bool:
    lowered = name.strip().lower()
    return lowered in _SCHEME_HEADERS or any(part in lowered for part in _HEADER_PARTS)


def _split(url: str) -> tuple[int, int, int, int, int]:
    """Offsets ``(authority_start, at, authority_end, query, fragment)`` of ``url``.

    ``at`` is the index of the ``@`` ending userinfo (-1 if none); ``query`` and ``fragment``
    are the indexes of ``?`` and ``#`` (``len(url)`` if absent). Without ``//`` (malformed), the
    authority is taken from the start, so ``user:pass@host`` still has its password found.
    """
    slashes = url.find("//")
    start = 0
    if slashes != -1 and not any(c in url[:slashes] for c in "/?#"):
        start = slashes + 2
    match = _AUTHORITY_END.search(url, start)
    end = match.start() if match else len(url)
    at = url.rfind("@", start, end)
    fragment = url.find("#", end)
    if fragment == -1:
        fragment = len(url)
    query = url.find("?", end, fragment)
    if query == -1:
        query = fragment
    return start, at, end, query, fragment


def _userinfo_secret(userinfo: str) -> tuple[str, str, str]:
    """``(before, secret, after)`` of userinfo: the password, else the username is the secret."""
    user, colon, password = userinfo.partition(":")
    if password:
        return user + colon, password, ""
    return "", user, colon


def _redact_params(params: str) -> str:
    pieces = _SEPARATOR.split(params)
    for i in range(0, len(pieces), 2):
        name, equals, value = pieces[i].partition("=")
        if value and _secret_param(name):
            pieces[i] = name + equals + MASK
    return "".join(pieces)


@lru_cache(maxsize=1024)
def _redact_url(url: str) -> str:
    try:
        if not any(c in url for c in "@?#"):
            return url
        start, at, _end, query, fragment = _split(url)
        out = [url[:start]]
        if at != -1:
            before, secret, after = _userinfo_secret(url[start:at])
            out.append(before + MASK + after if secret else url[start:at])
            out.append(url[at:query])
        else:
            out.append(url[start:query])
        if query < fragment:
            out.append("?" + _redact_params(url[query + 1 : fragment]))
        if fragment < len(url):
            out.append("#" + _redact_params(url[fragment + 1 :]))
        return "".join(out)
    except Exception:  # noqa: BLE001 - never expected; hiding everything is the safe answer
        return MASK


def redact_url(url: str) -> str:
    """The URL as written, with the userinfo password and secret parameter values as ``***``.

    ``ws://u:pw@h/?token=abc&rate=10`` gives ``ws://u:***@h/?token=***&rate=10``. A username
    without a password is the credential itself (``ws://***@h/``). Everything else (path,
    other parameters, their order, ``&``/``;`` separators, percent-encoding) is kept byte for
    byte. Never raises: a malformed URL gets a best effort, an unexpected failure ``***``.
    Results are cached, so calling it on every ``repr`` is cheap.
    """
    try:
        text = url if isinstance(url, str) else str(url)
    except Exception:  # noqa: BLE001
        return MASK
    return _redact_url(text)


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if hasattr(headers, "raw_items"):  # websockets.datastructures.Headers, with repeated names
        items = headers.raw_items()
    elif isinstance(headers, Mapping) or callable(getattr(headers, "items", None)):
        items = headers.items()  # also email.message.Message (http.client's response headers)
    else:
        items = headers
    return [(_text(name), _text(value)) for name, value in items]


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("latin-1")
    return str(value)


def _header_secret(name: str, value: str) -> tuple[str, str]:
    """``(kept_prefix, secret)`` of a header value; ``("", "")`` when nothing is secret."""
    if not value.strip() or not _secret_header(name):
        return "", ""
    if name.strip().lower() in _SCHEME_HEADERS:
        match = _AUTH_SCHEME.fullmatch(value)
        if match:
            return match.group(1), match.group(2)
    return "", value


def redact_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]] | None) -> list[tuple[str, str]]:
    """The ``(name, value)`` pairs, in order, with secret values as ``***``.

    ``Authorization: Bearer xyz`` gives ``Bearer ***`` (also ``Basic ***``; ``***`` without a
    scheme); ``Cookie``, ``X-Api-Key``, ``X-Auth-Token`` and the like give ``***``; blank values
    stay blank. Accepts a mapping, ``websockets``' ``Headers`` (repeated names kept), or
    ``(name, value)`` pairs; ``None`` gives ``[]``.
    """
    redacted = []
    for name, value in _header_pairs(headers):
        kept, secret = _header_secret(name, value)
        redacted.append((name, kept + MASK if secret else value))
    return redacted


def redact_text(text: str, secrets: Iterable[str]) -> str:
    """``text`` with every occurrence of each secret replaced by ``***``.

    For error messages that may quote a header or URL. Secrets shorter than
    ``MIN_SECRET_LENGTH`` (4) characters are ignored, so that common words stay readable.
    Overlapping or adjacent occurrences become a single ``***``, so no character of any secret
    is left showing. Use ``secrets_of(url, headers)`` for the secrets.
    """
    text = _text(text)
    found = {secret for secret in secrets if isinstance(secret, str) and len(secret) >= MIN_SECRET_LENGTH}
    spans = []
    for secret in found:
        index = text.find(secret)
        while index != -1:
            spans.append((index, index + len(secret)))
            index = text.find(secret, index + 1)
    if not spans:
        return text
    spans.sort()
    out, shown = [], 0  # text[:shown] is dealt with
    start, end = spans[0]
    for span_start, span_end in spans[1:]:
        if span_start <= end:
            end = max(end, span_end)
            continue
        out += [text[shown:start], MASK]
        shown, (start, end) = end, (span_start, span_end)
    out += [text[shown:start], MASK, text[end:]]
    return "".join(out)


def _with_decoded(value: str) -> list[str]:
    return [value, unquote(value), unquote_plus(value)]


def secrets_of(url: str, headers: Mapping[str, str] | Iterable[tuple[str, str]] | None = None) -> list[str]:
    """The secret strings in ``url`` and ``headers``, by ``redact_url``'s and ``redact_headers``' rules.

    Raw values and their percent-decoded forms (``%2B`` and ``+`` read both ways), each once,
    longest first: pass them to ``redact_text``. For ``Authorization: Bearer xyz`` it is
    ``xyz``; for ``Cookie`` the whole value and each cookie's value.
    """
    found: list[str] = []
    try:
        url = url if isinstance(url, str) else str(url)
        start, at, _end, query, fragment = _split(url)
        if at != -1:
            found += _with_decoded(_userinfo_secret(url[start:at])[1])
        for params in (url[query + 1 : fragment], url[fragment + 1 :]):
            for piece in _SEPARATOR.split(params)[::2]:
                name, _, value = piece.partition("=")
                if value and _secret_param(name):
                    found += _with_decoded(value)
    except Exception:  # noqa: BLE001 - best effort, like redact_url
        pass
    for name, value in _header_pairs(headers):
        secret = _header_secret(name, value)[1].strip()
        found.append(secret)
        if secret and name.strip().lower() == "cookie":
            found += [part.partition("=")[2].strip() for part in secret.split(";")]
    return sorted({s for s in found if s}, key=lambda s: (-len(s), s))
