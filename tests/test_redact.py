"""nbws.redact: secrets never shown in reprs, the panel, %ws_list or error messages."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from websockets.datastructures import Headers

import nbws.redact
from nbws.redact import MASK, redact_headers, redact_text, redact_url, secrets_of


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("ws://user:pass@host/", "ws://user:***@host/"),
        ("wss://alice:s3cr%40t@example.com:8443/feed", "wss://alice:***@example.com:8443/feed"),
        ("ws://u:p@ss@host/", "ws://u:***@host/"),  # a raw @ in the password: the last @ ends userinfo
        ("ws://abcdef0123456789abcdef@host", "ws://***@host"),  # a lone username is the credential
        ("ws://alice@host/", "ws://***@host/"),
        ("ws://sk_live_abc:@host/", "ws://***:@host/"),  # an empty password: the username is the key
        ("ws://@host/", "ws://@host/"),
        ("ws://:@host/", "ws://:@host/"),
        ("ws://user:pass@[::1]:8765/x", "ws://user:***@[::1]:8765/x"),
        ("user:pass@host:80/x", "user:***@host:80/x"),  # no scheme: best effort still finds it
    ],
)
def test_userinfo(url, expected):
    """The password in a URL shows as ***; a username without a password shows as *** too."""
    assert redact_url(url) == expected


@pytest.mark.parametrize(
    "name",
    [
        "token",
        "access_token",
        "TOKEN",
        "apikey",
        "apiKey",
        "api_key",
        "api-key",
        "key",
        "X-Api-Key",
        "client_secret",
        "password",
        "passwd",
        "pwd",
        "pass",
        "pw",
        "auth",
        "Authorization",
        "sig",
        "urlSig",
        "url_sig",
        "X-Amz-Signature",
        "signature",
        "session",
        "sessionId",
        "jsessionid",
        "sid",
        "jwt",
        "X-Amz-Credential",
        "credentials",
        "access",
        "ticket",
        "otp",
        "otpCode",
        "TOTP",
        "code",
        "Code",
        "api%5Fkey",  # percent-encoded name
        "api+key",
    ],
)
def test_secret_parameter_values_hidden(name):
    """A query parameter whose name looks secret shows its value as ***, its name as written."""
    url = f"wss://h.example/feed?rate=10&{name}=s3cr3t-VALUE&symbols=AAPL"
    assert redact_url(url) == f"wss://h.example/feed?rate=10&{name}=***&symbols=AAPL"


@pytest.mark.parametrize(
    "name",
    ["symbols", "rate", "signal", "design", "footprint", "country_code", "zipcode", "state", "compass", "s"],
)
def test_innocent_parameters_kept(name):
    """Parameters whose name is not secret-looking (even if it contains sig, otp, code, pass) are kept."""
    url = f"ws://h/?{name}=VALUE&token=t"
    assert redact_url(url) == f"ws://h/?{name}=VALUE&token=***"


@pytest.mark.parametrize(
    "url",
    [
        "ws://127.0.0.1:8765/ticker?rate=10&symbols=AAPL,MSFT",
        "ws://127.0.0.1:8765/",
        "ws://localhost",
        "wss://stream.example.com/ws/btcusdt@trade",  # an @ in the path is not userinfo
        "ws://[::1]:8765/ticker?rate=10",
        "ws://[fe80::1%25eth0]:8765/?a=1",
        "ws://h/?q=a%20b&x=%E2%82%AC&y=1+2&z",
        "ws://h/?a=1;b=2&&c=&=d&e==f",
        "ws://h/?",
        "ws://h/?email=bob@example.com",
        "ws://h/p;token=in-path/x",  # paths are never changed
        "ws://h/0123456789abcdef0123456789abcdef0123456789abcdef",
        "ws://h/?a=1#frag",
        "ws://h/#",
    ],
)
def test_non_secret_urls_unchanged(url):
    """A URL with nothing secret comes back byte for byte, percent-encoding and separators included."""
    assert redact_url(url) == url


def test_only_secret_values_change():
    """Order, & and ; separators, blank values, repeated keys and encodings of the rest are kept."""
    url = "ws://h:1/p%20q?b=%41&token=a;token=b&token=&token&c=1+1&key=x%2By&d=#"
    assert redact_url(url) == "ws://h:1/p%20q?b=%41&token=***;token=***&token=&token&c=1+1&key=***&d=#"


def test_percent_encoded_tokens():
    """A percent-encoded token is hidden whole, however it is encoded."""
    assert redact_url("ws://h/?token=ab%2Bc%2F%3D%3D&x=%2F") == "ws://h/?token=***&x=%2F"
    assert redact_url("ws://h/?to%6Ben=abc") == "ws://h/?to%6Ben=***"


def test_fragments():
    """No fragment is added; key=value pairs in one (OAuth's #access_token=) are treated like a query."""
    assert "#" not in redact_url("ws://u:p@h/?token=x")
    assert redact_url("ws://h/?a=1#access_token=xyz&state=s") == "ws://h/?a=1#access_token=***&state=s"
    assert redact_url("ws://h/#?token=xyz") == "ws://h/#?token=***"  # searched too, ? and all


@pytest.mark.parametrize(
    "url",
    [
        "",
        " ",
        "@",
        "?",
        "#",
        "=",
        "&",
        ";",
        "//",
        "//@",
        "?=",
        "?&&;;==",
        ":@",
        "ws://",
        "ws://[",
        "ws://]@[",
        "ws://a:b:c@d@e?f=g=h#i#j?k",
        "ws://h/?token=%",
        "ws://h/?%=%&token=%zz",
        "ws://h/?\x00token=\x00",
        "ws://h/?token=\ud800",  # a lone surrogate
        "\n\r\t",
        "ws://h/?" + "&" * 10_000,
        "ws://" + "a:" * 5_000 + "@h",
        "💥://🔑:🔑@🏠/?🔑=🔑&token=🔑",
    ],
)
def test_garbage_never_raises(url):
    """Any string, however malformed, gets a string back and never an exception."""
    assert isinstance(redact_url(url), str)
    assert isinstance(secrets_of(url, None), list)


def test_garbage_best_effort():
    """Malformed URLs still have their secrets hidden where they can be found."""
    assert redact_url("ws://a:b:c@d@e?f=g&token=h") == "ws://a:***@e?f=g&token=***"
    assert redact_url("  ws://u:p@h/") == "  ws://u:***@h/"
    assert redact_url("💥://🔑:🔑@🏠/?🔑=🔑&token=🔑") == "💥://🔑:***@🏠/?🔑=🔑&token=***"


def test_non_string_url():
    """A non-string URL is shown through str() rather than raising."""
    assert redact_url(None) == "None"  # type: ignore[arg-type]

    class Unprintable:
        def __str__(self):
            raise RuntimeError("no")

    assert redact_url(Unprintable()) == MASK  # type: ignore[arg-type]


def test_fast():
    """Redacting on every repr costs microseconds (cached; also quick for new URLs)."""
    url = "wss://user:pw@h.example:8443/feed?rate=10&symbols=AAPL,MSFT&token=abc&apikey=def"
    started = time.perf_counter()
    for i in range(2_000):
        redact_url(url + str(i))
    fresh = time.perf_counter() - started
    started = time.perf_counter()
    for _ in range(20_000):
        redact_url(url)
    cached = time.perf_counter() - started
    assert fresh < 1.0 and cached < 0.5, (fresh, cached)


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("Authorization", "Bearer xyz.abc", "Bearer ***"),
        ("authorization", "Basic dXNlcjpwYXNz", "Basic ***"),
        ("Authorization", "token-without-scheme", "***"),
        ("Authorization", "Bearer", "***"),
        ("Proxy-Authorization", "Digest username=x, response=y", "Digest ***"),
        ("Cookie", "sessionid=abc; csrftoken=def", "***"),
        ("Set-Cookie", "id=a3fWa; Max-Age=2592000", "***"),
        ("X-Api-Key", "k123", "***"),
        ("X-Auth-Token", "t", "***"),
        ("X-Amz-Security-Token", "t", "***"),
        ("Client-Secret", "s", "***"),
        ("X-Session-Id", "s", "***"),
        ("X-Password", "p", "***"),
        ("X-Signature", "s", "***"),
        ("X-Credential", "c", "***"),
        ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==", "***"),  # contains "key": masked too
        ("Authorization", "", ""),  # blank stays blank
        ("Origin", "https://example.com", "https://example.com"),
        ("User-Agent", "nbws/0.1 token", "nbws/0.1 token"),
        ("Accept", "*/*", "*/*"),
    ],
)
def test_header_rules(name, value, expected):
    """Secret headers show ***, Authorization keeps its scheme; other headers are kept as they are."""
    assert redact_headers([(name, value)]) == [(name, expected)]


def test_header_inputs():
    """A dict, a list of pairs (repeated names kept, in order), websockets' Headers or None all work."""
    assert redact_headers({"Authorization": "Bearer x", "Origin": "o"}) == [
        ("Authorization", "Bearer ***"),
        ("Origin", "o"),
    ]
    pairs = [("Cookie", "a=1"), ("X-Tag", "1"), ("Cookie", "b=2"), ("X-Tag", "2")]
    assert redact_headers(pairs) == [("Cookie", "***"), ("X-Tag", "1"), ("Cookie", "***"), ("X-Tag", "2")]
    assert redact_headers(iter(pairs)) == redact_headers(pairs)
    assert redact_headers(Headers(pairs)) == redact_headers(pairs)
    assert redact_headers(None) == [] and redact_headers({}) == []
    assert redact_headers([(b"X-Api-Key", b"k"), ("X-Count", 3)]) == [("X-Api-Key", "***"), ("X-Count", "3")]


@pytest.mark.parametrize(
    ("text", "secrets", "expected"),
    [
        ("HTTP 401 for token=abc123", ["abc123"], "HTTP 401 for token=***"),
        ("abc123 abc123", ["abc123"], "*** ***"),
        ("pass is the word", ["pass"], "*** is the word"),
        ("the key is abc", ["abc", "", "key"], "the key is abc"),  # shorter than 4: ignored
        ("x sk_live_1234 y", ["sk_live_1234", "live"], "x *** y"),  # longest first
        ("abcdefg", ["abcd", "cdefg"], "***"),  # overlapping: no character left showing
        ("abcdefgh", ["abcd", "efgh"], "***"),  # adjacent
        ("nothing here", [], "nothing here"),
        ("", ["abcd"], ""),
        ("a.b*c(d) and a-b", ["a.b*c(d)"], "*** and a-b"),  # regex characters are literal
    ],
)
def test_redact_text(text, secrets, expected):
    """Every occurrence of every secret (4+ characters) in an error message becomes ***."""
    assert redact_text(text, secrets) == expected


def test_redact_text_takes_any_iterable():
    """Secrets can come from a generator or set, and non-strings among them are skipped."""
    assert redact_text("s3cret!", (s for s in ["s3cret!"])) == "***"
    assert redact_text("s3cret!", {"s3cret!", None}) == "***"  # type: ignore[arg-type]


def test_secrets_of():
    """The secrets of a URL and headers, raw and percent-decoded, longest first, each once."""
    url = "ws://bob:p%40ss@h/?token=a%2Bb+c&rate=10&token=a%2Bb+c&key=#access_token=frag"
    headers = [("Authorization", "Bearer tok123"), ("Cookie", "sid=abcdef; x=12345"), ("Origin", "o")]
    assert secrets_of(url, headers) == [
        "sid=abcdef; x=12345",
        "a%2Bb+c",
        "abcdef",
        "p%40ss",
        "tok123",
        "12345",
        "a+b c",
        "a+b+c",
        "frag",
        "p@ss",
    ]
    assert secrets_of("ws://alice@h/") == ["alice"]
    assert secrets_of("ws://127.0.0.1:8765/ticker?rate=10&symbols=AAPL,MSFT", {}) == []


def test_secrets_of_feeds_redact_text():
    """An error message quoting the URL or a header, in any encoding, shows no secret."""
    url = "wss://u:hunter22@h/feed?api_key=K%2FEY-12345&symbols=AAPL"
    headers = {"Authorization": "Bearer eyJhbGciOi.payload.sig", "X-Trace": "t-1"}
    message = (
        f"server rejected {url} (key K/EY-12345) with headers {headers!r}; "
        "basic auth u:hunter22 tried; symbols AAPL"
    )
    shown = redact_text(message, secrets_of(url, headers))
    for secret in ("hunter22", "K%2FEY-12345", "K/EY-12345", "eyJhbGciOi"):
        assert secret not in shown
    assert "AAPL" in shown and "t-1" in shown and "Bearer ***" in shown
    assert redact_url(url) in shown


def test_public_api():
    """The four functions are public, in __all__, and each says what it returns."""
    for name in ("redact_url", "redact_headers", "redact_text", "secrets_of"):
        assert name in nbws.redact.__all__
        assert getattr(nbws.redact, name).__doc__


def test_standard_library_only():
    """nbws.redact needs nothing beyond the standard library, so any part of nbws can use it.

    The module is loaded on its own (not through ``nbws/__init__``, which imports pandas and
    websockets) in a fresh interpreter; tests/test_package.py keeps IPython out of the core.
    """
    path = Path(nbws.redact.__file__)
    alone = (
        "import importlib.util, sys;"
        "before = set(sys.modules);"
        f"spec = importlib.util.spec_from_file_location('redact_alone', {str(path)!r});"
        "module = importlib.util.module_from_spec(spec); spec.loader.exec_module(module);"
        "assert module.redact_url('ws://u:p@h/?token=t') == 'ws://u:***@h/?token=***';"
        "new = {m.split('.')[0] for m in set(sys.modules) - before} - {'redact_alone'};"
        "print(sorted(new - set(sys.stdlib_module_names)))"
    )
    result = subprocess.run([sys.executable, "-c", alone], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
