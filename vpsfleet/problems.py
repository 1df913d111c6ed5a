"""A problem found in a fleet file: where it is and what is wrong."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True, order=True)
class Problem:
    location: str  # a path into the file, e.g. "guests[2].ipv4"; "" for the file itself
    message: str

    def render(self, source: str) -> str:
        if self.location:
            return f"{source}: {self.location}: {self.message}"
        return f"{source}: {self.message}"


def render_path(parts: Iterable[str | int], prefix: str = "") -> str:
    """`render_path(["guests", 2, "ipv4"])` -> "guests[2].ipv4"."""
    path = prefix
    for part in parts:
        if isinstance(part, int):
            path += f"[{part}]"
        else:
            path += f".{part}" if path else str(part)
    return path


def item_path(section: str, index: int, *rest: str | int) -> str:
    """`item_path("guests", 2, "ipv4")` -> "guests[2].ipv4"."""
    return render_path((section, index, *rest))
