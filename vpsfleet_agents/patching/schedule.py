"""Times on the guest: now, the guest's time zone as people read it, and the next start of its
daily maintenance window."""

from __future__ import annotations

import datetime as dt
import os


def now_local(override: str | None) -> dt.datetime:
    """Now in local time, or the ISO time `override` (tests) converted to local time."""
    if override:
        return dt.datetime.fromisoformat(override).astimezone()
    return dt.datetime.now().astimezone()


def zone_name() -> str:
    """The guest's time zone as people read it (Europe/Paris), else its abbreviation."""
    if os.environ.get("TZ"):
        return os.environ["TZ"].lstrip(":")
    target = os.path.realpath("/etc/localtime")
    if "/zoneinfo/" in target:
        return target.split("/zoneinfo/", 1)[1]
    return dt.datetime.now().astimezone().tzname() or "UTC"


def next_window(earliest: dt.datetime, window: str) -> dt.datetime:
    """The first start of the daily maintenance window at or after `earliest`, in local time
    (each day's offset resolved on its own: summer and winter time)."""
    hour, minute = (int(x) for x in window.split(":"))
    day = earliest.astimezone().date()
    while True:
        candidate = dt.datetime.combine(day, dt.time(hour, minute)).astimezone()
        if candidate >= earliest:
            return candidate
        day += dt.timedelta(days=1)
