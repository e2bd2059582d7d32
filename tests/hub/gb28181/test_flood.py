"""The per-address token buckets that hold back REGISTER floods."""

from __future__ import annotations

from hub.gb28181.flood import TokenBuckets


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate_then_refusals_counted_in_a_row() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=2.0, burst=3, clock=clock)
    assert [buckets.take("10.0.0.1") for _ in range(5)] == [0, 0, 0, 1, 2]
    assert buckets.limited == 2
    assert buckets.take("10.0.0.2") == 0  # its own bucket
    clock.now += 0.5  # one token back at 2 per second
    assert buckets.take("10.0.0.1") == 0
    assert buckets.take("10.0.0.1") == 1  # a new run of refusals: logged again
    clock.now += 60
    assert [buckets.take("10.0.0.1") for _ in range(4)] == [0, 0, 0, 1]  # full, not more


def test_the_table_of_addresses_is_bounded_oldest_out() -> None:
    clock = Clock()
    buckets = TokenBuckets(rate=1.0, burst=1, clock=clock, max_keys=3)
    for host in ("a", "b", "c"):
        assert buckets.take(host) == 0
    assert buckets.take("a") == 1  # a is now the most recent
    assert buckets.take("d") == 0  # b goes
    assert len(buckets) == 3
    assert buckets.take("b") == 0  # forgotten: a fresh bucket
    assert buckets.take("a") == 2  # still remembered and still empty
