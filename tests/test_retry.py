"""The retry policy: pure decisions and delays, with the random source injected."""

from __future__ import annotations

import pytest

from nbws.retry import RETRY_CLOSE_CODES, STABLE_SECONDS, RetryPolicy


def top(lo: float, hi: float) -> float:
    return hi


def test_never_retries_when_disabled():
    """reconnect=False: no retry after a failure or a drop."""
    policy = RetryPolicy(False)
    assert policy.after_failure(retryable=True) is None
    assert policy.after_drop(1006, lived=100.0) is None


def test_not_retryable_failures_are_not_retried():
    assert RetryPolicy(True).after_failure(retryable=False) is None


def test_backoff_doubles_up_to_the_longest_and_resets_on_open():
    policy = RetryPolicy(True, (0.5, 2.0), uniform=top)
    assert [policy.after_failure(True) for _ in range(5)] == [0.5, 1.0, 2.0, 2.0, 2.0]
    policy.opened()
    assert policy.after_failure(True) == 0.5


def test_jitter_stays_within_half_and_all_of_the_bound():
    seen = []

    def record(lo, hi):
        seen.append((lo, hi))
        return lo

    policy = RetryPolicy(True, (1.0, 30.0), uniform=record)
    for _ in range(3):
        policy.after_failure(True)
    assert seen == [(0.5, 1.0), (1.0, 2.0), (2.0, 4.0)]


def test_flapping_connections_back_off_and_stable_ones_do_not():
    """A drop soon after opening waits a growing delay; one after a stable period reopens at once
    and starts the flapping backoff again."""
    policy = RetryPolicy(True, (1.0, 8.0), uniform=top)
    assert [policy.after_drop(1006, lived=0.1) for _ in range(3)] == [1.0, 2.0, 4.0]
    assert policy.after_drop(1006, lived=STABLE_SECONDS) == 0.0
    assert policy.after_drop(1006, lived=0.1) == 1.0


@pytest.mark.parametrize("code", sorted(RETRY_CLOSE_CODES))
def test_drops_and_server_trouble_are_reconnected(code):
    assert RetryPolicy(True).after_drop(code, lived=100.0) == 0.0


@pytest.mark.parametrize("code", [1000, 1002, 1003, 1007, 1008, 1009, 1010, 3000, 4000])
def test_codes_that_end_the_conversation_are_not(code):
    assert RetryPolicy(True).after_drop(code, lived=100.0) is None


@pytest.mark.parametrize("delay", [(0, 1), (2, 1), (-1, 5)])
def test_bad_delays_are_refused(delay):
    with pytest.raises(ValueError, match="reconnect_delay"):
        RetryPolicy(True, delay)
