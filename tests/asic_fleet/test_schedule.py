"""Pure scheduling arithmetic: phase spread, slot alignment, capped backoff."""

from __future__ import annotations

from edge_agent.collectors.asic.schedule import backoff_slots, phase, slot_at_or_after


def test_phase_is_stable_and_spreads_a_large_fleet_evenly() -> None:
    keys = [f"10.{i // 65536}.{(i // 256) % 256}.{i % 256}:4028" for i in range(10_000)]
    phases = [phase(k) for k in keys]
    assert phases == [phase(k) for k in keys]
    assert all(0.0 <= p < 1.0 for p in phases)
    buckets = [0] * 10
    for p in phases:
        buckets[int(p * 10)] += 1
    # Every tenth of the interval gets close to a tenth of the polls: no burst at the start.
    assert all(800 <= b <= 1200 for b in buckets), buckets


def test_slots_are_aligned_and_late_polls_skip_missed_slots() -> None:
    first, interval = 100.0, 30.0
    assert slot_at_or_after(50.0, first, interval) == 0
    assert slot_at_or_after(100.0, first, interval) == 0
    assert slot_at_or_after(100.1, first, interval) == 1
    # Exactly on a slot (up to float error) stays on that slot rather than skipping one.
    assert slot_at_or_after(first + 3 * interval, first, interval) == 3
    assert slot_at_or_after(first + 0.1 * 3 + 29.7 * 3, first, 29.8) == 3
    # A poll that ended 2.5 intervals late resumes at the next slot, not three in a row.
    assert slot_at_or_after(first + 2.5 * interval, first, interval) == 3


def test_backoff_doubles_per_failure_and_is_capped() -> None:
    interval = 30.0
    assert [backoff_slots(n, interval, 600.0) for n in range(1, 9)] == [1, 2, 4, 8, 16, 20, 20, 20]
    # A cap below the interval still retries every interval; a cap that is not a multiple rounds up.
    assert backoff_slots(5, interval, 10.0) == 1
    assert backoff_slots(5, interval, 100.0) == 4
    # Absurd failure counts neither overflow nor exceed the cap.
    assert backoff_slots(10_000, interval, 600.0) == 20
