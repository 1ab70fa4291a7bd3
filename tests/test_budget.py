"""nbws.budget: the update budget, fed times and sizes (no threads, no clock)."""

from __future__ import annotations

from nbws.budget import UpdateBudget


def busiest_second(sent: list[tuple[float, int]]) -> tuple[int, int]:
    """The most updates and the most bytes in any one-second window of ``sent``."""
    counts, sizes = [], []
    for start, _ in sent:
        window = [size for when, size in sent if start <= when < start + 1.0]
        counts.append(len(window))
        sizes.append(sum(window))
    return max(counts, default=0), max(sizes, default=0)


def drive(budget: UpdateBudget, ticks: int, tick: float, sizes: list[int]) -> list[tuple[float, int]]:
    """Offer ``sizes`` every ``tick`` seconds; what the budget let through."""
    sent = []
    for i in range(ticks):
        now = i * tick
        if budget.allows(now, sizes):
            budget.spend(now, sizes)
            sent += [(now, size) for size in sizes]
    return sent


def test_updates_per_second_are_capped():
    sent = drive(UpdateBudget(20, 10**9), ticks=500, tick=0.01, sizes=[10, 10, 10])
    count, _ = busiest_second(sent)
    assert count <= 20
    assert len(sent) >= 5 * 18  # and it does not starve: close to the cap over 5 s


def test_bytes_per_second_are_capped_whatever_the_update_size():
    for size in (1_000, 30_000, 99_000):
        sent = drive(UpdateBudget(20, 100_000), ticks=1_000, tick=0.01, sizes=[size])
        _, total = busiest_second(sent)
        assert total <= 100_000, size
        per_second = min(20, 100_000 // size)
        assert len(sent) >= 10 * per_second * 0.8  # over 10 s it lets through near what it may


def test_an_update_bigger_than_the_budget_still_goes_once_the_window_is_empty():
    budget = UpdateBudget(20, 100)
    assert budget.allows(0.0, [500])
    budget.spend(0.0, [500])
    assert not budget.allows(0.5, [1])
    assert budget.allows(1.0, [500])
