"""nbws.collector: the cyclic garbage collector paused around bulk work."""

from __future__ import annotations

import gc

import pytest

from nbws.collector import paused


def test_the_collector_is_paused_for_the_block_and_on_again_after(collections):
    assert gc.isenabled()
    with paused():
        assert not gc.isenabled()
        kept = [[i] for i in range(20_000)]  # far beyond the youngest generation's threshold
        assert collections == []
    assert gc.isenabled()
    with pytest.raises(KeyError), paused():
        raise KeyError("the block failed")
    assert gc.isenabled() and len(kept) == 20_000


def test_a_collector_someone_turned_off_stays_off():
    gc.disable()
    try:
        with paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
