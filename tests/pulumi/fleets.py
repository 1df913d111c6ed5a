"""The example fleets, and edited copies of them for what-if tests."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from vpsfleet import load_fleet
from vpsfleet.fleet import Fleet

REPO = Path(__file__).resolve().parents[2]
ENVIRONMENTS = ("lab", "example-production")


def fleet(env: str) -> Fleet:
    return load_fleet(REPO / "inventories" / env / "fleet.yml")


def with_guest(base: Fleet, name: str, **changes: Any) -> Fleet:
    """A copy of the fleet where one guest has the given fields changed."""
    found = False
    guests = []
    for guest in base.guests:
        if guest.name == name:
            guest = guest.model_copy(update=changes)
            found = True
        guests.append(guest)
    assert found, f"no guest {name}"
    return dataclasses.replace(base, guests=guests)
