"""The cycle is the calendar month in the provider's time zone."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from vpsfleet_agents.traffic.cycle import cycle_end, cycle_of

PARIS = "Europe/Paris"
UTC = dt.UTC


@pytest.mark.parametrize(
    ("instant", "cycle"),
    [
        (dt.datetime(2026, 11, 30, 22, 59, 59, tzinfo=UTC), "2026-11"),  # 23:59:59 in Paris (CET)
        (dt.datetime(2026, 11, 30, 23, 0, 0, tzinfo=UTC), "2026-12"),  # midnight in Paris
        (dt.datetime(2026, 12, 31, 23, 0, 0, tzinfo=UTC), "2027-01"),  # the new year in Paris
        (dt.datetime(2026, 7, 31, 21, 59, 59, tzinfo=UTC), "2026-07"),  # 23:59:59 CEST
        (dt.datetime(2026, 7, 31, 22, 0, 0, tzinfo=UTC), "2026-08"),
    ],
)
def test_the_month_is_the_providers_not_utcs(instant: dt.datetime, cycle: str) -> None:
    assert cycle_of(instant, PARIS) == cycle


def test_the_cycle_ends_at_local_midnight_of_the_next_months_first_day() -> None:
    assert cycle_end("2026-12", PARIS) == dt.datetime(2026, 12, 31, 23, 0, tzinfo=UTC)
    assert cycle_end("2026-03", PARIS) == dt.datetime(2026, 3, 31, 22, 0, tzinfo=UTC)  # after DST starts


def test_a_malformed_cycle_is_refused() -> None:
    with pytest.raises(ValueError, match="not a cycle"):
        cycle_end("2026-13", PARIS)


@given(
    st.datetimes(min_value=dt.datetime(2000, 1, 1), max_value=dt.datetime(2100, 1, 1), timezones=st.just(UTC))
)
def test_every_instant_falls_before_its_cycles_end_and_after_the_previous_one(instant: dt.datetime) -> None:
    cycle = cycle_of(instant, PARIS)
    assert instant < cycle_end(cycle, PARIS)
    year, month = int(cycle[:4]), int(cycle[5:])
    previous = f"{year - 1}-12" if month == 1 else f"{year}-{month - 1:02d}"
    assert cycle_end(previous, PARIS) <= instant
