"""Filters of the patching role: times of day against the backup window (M18), and the lists
that `apt-config dump` shows."""

from __future__ import annotations

from typing import Any

DAY = 24 * 60


def patching_minutes(value: str) -> int:
    """ "04:30" -> 270: minutes after midnight of an HH:MM time of day."""
    hours, minutes = str(value).split(":")
    return int(hours) * 60 + int(minutes)


def patching_overlaps(start: Any, length: Any, window_start: Any, window_end: Any) -> bool:
    """Whether [start, start + length) meets the daily window, midnight crossings included."""
    start, length = int(start), int(length)
    first, last = int(window_start), int(window_end)
    if last <= first:
        last += DAY  # a window across midnight, e.g. 23:00-02:00
    return any(start < last + shift and first + shift < start + length for shift in (-DAY, 0, DAY))


def patching_apt_list(lines: list[str], key: str) -> list[str]:
    """The values of an apt list in `apt-config dump` output (`Key:: "value";` lines)."""
    prefix = f"{key}:: "
    return [
        line[len(prefix):].removesuffix(";").strip('"')
        for line in lines
        if line.startswith(prefix)
    ]


class FilterModule:
    def filters(self) -> dict[str, Any]:
        return {
            "patching_minutes": patching_minutes,
            "patching_overlaps": patching_overlaps,
            "patching_apt_list": patching_apt_list,
        }
