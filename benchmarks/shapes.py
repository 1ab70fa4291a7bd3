"""The message shapes the benchmarks send: what real feeds look like, not only small flat ticks.

Each shape is a function ``n -> list of payloads`` (``bytes`` of JSON text, or ``bytearray`` for a
binary frame), deterministic so every case of a run receives the same bytes.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import orjson

__all__ = ["SHAPES", "is_binary"]

SYMBOLS = ("AAPL", "MSFT", "NVDA", "AMZN")
PAIRS = ("BTC-USD", "ETH-USD", "SOL-USD", "DOGE-USD")
START = datetime(2026, 12, 1, 9, 30, tzinfo=UTC)
BIG_ID = 2**60  # ids beyond 2**53, as exchanges' sequence numbers are


def small(n: int) -> list[bytes]:
    """~70-byte flat ticks; every third one nested (``book``), so flattening is exercised."""
    messages = []
    for i in range(n):
        price = 100 + (i % 1000) / 100
        if i % 3 == 0:
            body = {
                "seq": i,
                "sym": SYMBOLS[i % 4],
                "px": price,
                "book": {"b": price - 0.01, "a": price + 0.01},
            }
        else:
            body = {
                "seq": i,
                "sym": SYMBOLS[i % 4],
                "px": price,
                "qty": i % 500,
                "side": "b" if i % 2 else "s",
            }
        messages.append(orjson.dumps(body))
    return messages


def _levels(rng: random.Random, mid: float, side: int, count: int) -> list[list[str]]:
    """``count`` ``[price, size]`` pairs as decimal strings, walking away from ``mid``."""
    return [[f"{mid + side * (k + 1) * 0.01:.2f}", f"{rng.random() * 3:.8f}"] for k in range(count)]


def _book_diff(rng: random.Random, i: int, levels: int = 20) -> dict:
    mid = 67_000 + (i % 5_000) * 0.01
    return {
        "e": "depthUpdate",
        "E": 1_764_581_400_000 + i,
        "s": "BTCUSDT",
        "U": 50_000_000_000 + 2 * i,
        "u": 50_000_000_000 + 2 * i + 1,
        "b": _levels(rng, mid, -1, levels),
        "a": _levels(rng, mid, 1, levels),
    }


def book(n: int) -> list[bytes]:
    """Order-book diffs, ~1.1 KB: 20 ``[price, size]`` string pairs a side (Binance's depth)."""
    rng = random.Random(1)
    return [orjson.dumps(_book_diff(rng, i)) for i in range(n)]


def _ticker(rng: random.Random, i: int) -> dict:
    price = 67_000 + rng.random() * 100
    when = START + timedelta(microseconds=1_137 * i)
    return {
        "type": "ticker",
        "sequence": BIG_ID + i,
        "product_id": PAIRS[i % 4],
        "price": f"{price:.2f}",
        "volume_24h": f"{12_000 + i * 0.001:.4f}",
        "low_24h": "65880.01",
        "high_24h": "67999.99",
        "best_bid": f"{price - 0.01:.2f}",
        "best_bid_size": f"{rng.random():.6f}",
        "best_ask": f"{price + 0.01:.2f}",
        "best_ask_size": f"{rng.random():.6f}",
        "side": "buy" if i % 2 else "sell",
        "time": when.isoformat(timespec="microseconds").replace("+00:00", "Z"),
        "trade_id": 700_000_000 + i,
        "last_size": f"{rng.random() / 10:.6f}",
    }


def ticker(n: int) -> list[bytes]:
    """Exchange tickers, ~330 B: ISO-8601 times, decimal strings, ids beyond 2**53 (Coinbase's)."""
    rng = random.Random(2)
    return [orjson.dumps(_ticker(rng, i)) for i in range(n)]


def mixed(n: int) -> list[bytes]:
    """Tickers, book diffs, trades and heartbeats on one socket; some fields come and go."""
    rng = random.Random(3)
    messages = []
    for i in range(n):
        kind = i % 10
        if kind < 4:
            body = _ticker(rng, i)
            if i % 7 == 0:
                body["note"] = "halted" if i % 2 else None  # a field that comes and goes
        elif kind < 7:
            body = _book_diff(rng, i, levels=5 + i % 15)
        elif kind < 9:
            body = {
                "type": "trade",
                "id": BIG_ID + i,
                "px": f"{67_000 + rng.random():.2f}",
                "qty": round(rng.random(), 6),
                "maker": bool(i % 2),
                "ts": (START + timedelta(milliseconds=i)).isoformat(),
                "meta": {"venue": "X", "flags": [i % 3]},
            }
        else:
            body = {"type": "heartbeat", "sequence": BIG_ID + i}
        messages.append(orjson.dumps(body))
    return messages


def snapshots(n: int) -> list[bytes]:
    """Book diffs with a ~64 KB full snapshot (1,250 levels a side) every 500 messages."""
    rng = random.Random(4)
    messages = []
    for i in range(n):
        if i % 500 == 0:
            mid = 67_000 + i * 0.01
            body = {
                "e": "snapshot",
                "lastUpdateId": 50_000_000_000 + 2 * i,
                "bids": _levels(rng, mid, -1, 1250),
                "asks": _levels(rng, mid, 1, 1250),
            }
        else:
            body = _book_diff(rng, i)
        messages.append(orjson.dumps(body))
    return messages


def binary(n: int) -> list[bytearray]:
    """256-byte binary frames (a packed feed): nothing to parse, kept as messages."""
    rng = random.Random(5)
    return [bytearray(rng.randbytes(256)) for _ in range(n)]


def is_binary(payload: bytes | bytearray) -> bool:
    return isinstance(payload, bytearray)


SHAPES = {
    "small": small,
    "book": book,
    "ticker": ticker,
    "mixed": mixed,
    "snapshots": snapshots,
    "binary": binary,
}
