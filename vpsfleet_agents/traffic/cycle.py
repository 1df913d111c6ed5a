"""The billing cycle: the calendar month in the provider's time zone (002 art. 12 realigns every
renewal to calendar months, so all guests share the same cycles)."""

from __future__ import annotations

import datetime as dt
import re
import zoneinfo

CYCLE = re.compile(r"^(\d{4})-(0[1-9]|1[0-2])$")


def cycle_of(instant: dt.datetime, time_zone: str) -> str:
    """`YYYY-MM` of the month `instant` falls in, in `time_zone` (an aware instant)."""
    local = instant.astimezone(zoneinfo.ZoneInfo(time_zone))
    return f"{local.year:04d}-{local.month:02d}"


def cycle_end(cycle: str, time_zone: str) -> dt.datetime:
    """The first instant of the next cycle: midnight of the next month's first day, local time."""
    match = CYCLE.match(cycle)
    if not match:
        raise ValueError(f"not a cycle: {cycle!r}")
    year, month = int(match.group(1)), int(match.group(2))
    year, month = (year + 1, 1) if month == 12 else (year, month + 1)
    return dt.datetime(year, month, 1, tzinfo=zoneinfo.ZoneInfo(time_zone))
