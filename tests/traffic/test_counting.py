"""Counting across counter resets and cycles (hand-worked figures, then properties)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from vpsfleet_agents.traffic.counting import Counter, Ledger, grown, next_cycle, over_quota, record


def test_the_first_sighting_counts_nothing() -> None:
    # The counter may hold an earlier month's traffic: the customer gets the benefit of the doubt.
    assert grown(None, Counter("boot-a/7", 5_000)) == 0


def test_a_growing_counter_counts_the_difference() -> None:
    assert grown(Counter("boot-a/7", 5_000), Counter("boot-a/7", 12_500)) == 7_500


def test_a_restarted_domain_counts_its_whole_new_counter() -> None:
    # Domain run 7 ended at 12,500; run 8 has sent 3,000 since it started: all of it is new,
    # and even a new counter already above the old one is taken whole (another identity).
    assert grown(Counter("boot-a/7", 12_500), Counter("boot-a/8", 3_000)) == 3_000
    assert grown(Counter("boot-a/7", 12_500), Counter("boot-a/8", 20_000)) == 20_000


def test_a_host_reboot_counts_the_whole_new_counter_even_with_the_same_domain_id() -> None:
    assert grown(Counter("boot-a/1", 9_000), Counter("boot-b/1", 9_500)) == 9_500


def test_a_counter_that_went_down_under_the_same_identity_started_again() -> None:
    # An interface unplugged and plugged again: same domain run, a new tap.
    assert grown(Counter("boot-a/7", 12_500), Counter("boot-a/7", 400)) == 400


def test_a_month_with_two_restarts_loses_nothing_that_was_read() -> None:
    ledger = Ledger()
    readings = [
        Counter("b/1", 1_000),  # first sighting: 0
        Counter("b/1", 4_000),  # +3,000
        Counter("b/2", 2_500),  # restart: +2,500
        Counter("b/2", 2_500),  # idle: +0
        Counter("c/1", 700),  # host reboot: +700
        Counter("c/1", 10_700),  # +10,000
    ]
    for reading in readings:
        ledger = record(ledger, reading)
    assert ledger.counted_bytes == 3_000 + 2_500 + 700 + 10_000
    assert ledger.counter == Counter("c/1", 10_700)


def test_a_new_cycle_starts_from_zero_but_keeps_the_last_counter() -> None:
    old = Ledger(
        counted_bytes=11 * 10**12,
        counter=Counter("b/1", 8_000),
        throttled_at="2026-12-20T10:00:00+00:00",
        notified=True,
        lifted_at=None,
    )
    new = next_cycle(old)
    assert new == Ledger(counter=Counter("b/1", 8_000))
    # What the guest sent since the last run of the old month is counted in the new one.
    assert record(new, Counter("b/1", 9_200)).counted_bytes == 1_200


def test_the_quota_is_spent_at_the_quota_itself_unless_lifted_by_hand() -> None:
    quota = 10 * 10**12
    assert not over_quota(Ledger(counted_bytes=quota - 1), quota)
    assert over_quota(Ledger(counted_bytes=quota), quota)
    assert not over_quota(Ledger(counted_bytes=quota + 1, lifted_at="2026-12-21T09:00:00+00:00"), quota)


# A month as runs of the domain (each a new counter identity), each run as increments of its
# counter, each increment followed by a job run or not.
months = st.lists(
    st.lists(st.tuples(st.integers(0, 10**12), st.booleans()), max_size=8),
    max_size=6,
)


@given(months)
def test_counted_is_what_the_readings_saw_grow_whatever_the_resets(
    month: list[list[tuple[int, bool]]],
) -> None:
    ledger, counted = Ledger(), []
    for run, increments in enumerate(month):
        total = 0
        for increment, polled in increments:
            total += increment
            if polled:
                ledger = record(ledger, Counter(f"boot/{run}", total))
                counted.append(ledger.counted_bytes)
    # Worked out without the code: each domain run contributes its counter at its last reading;
    # the very first reading is only the baseline.
    seen = []
    for increments in month:
        totals = [
            sum(i for i, _ in increments[: n + 1]) for n, (_, polled) in enumerate(increments) if polled
        ]
        seen.append(totals)
    readings = [totals for totals in seen if totals]
    expected = sum(totals[-1] for totals in readings) - (readings[0][0] if readings else 0)
    assert ledger.counted_bytes == expected
    assert counted == sorted(counted), "the count never goes down"


@given(st.lists(st.integers(0, 10**9), min_size=1, max_size=20))
def test_a_reading_after_every_step_counts_everything_after_the_baseline(steps: list[int]) -> None:
    ledger, total = record(Ledger(), Counter("b/1", 0)), 0
    for step in steps:
        total += step
        ledger = record(ledger, Counter("b/1", total))
    assert ledger.counted_bytes == sum(steps)
