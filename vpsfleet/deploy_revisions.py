"""The two fleets a deploy compares: the file at `--from` and at `--to` (or the working tree).

The new side must pass everything `vpsfleet validate --against FROM` checks, through the same
code (loader.check_fleet, then history.check_against: M3, M9, M10, M11); otherwise the deploy is
refused with every problem and its location, and nothing is planned. The old side only needs to
parse: it was deployed already, but an item today's schema cannot read would look like a new
machine (and get access codes), so it is refused too.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path

from vpsfleet.fleet import Fleet
from vpsfleet.history import check_against, previous_text
from vpsfleet.loader import FleetInvalid, check_fleet, parse, read_yaml
from vpsfleet.problems import Problem

WORKTREE = "WORKTREE"


@dataclass(frozen=True)
class Revisions:
    before: Fleet
    after: Fleet


def _empty_like(fleet: Fleet, path: Path) -> Fleet:
    """The fleet before the file existed: the same environment, no machine."""
    return Fleet(source=path, environment=fleet.environment, policy=fleet.policy,
                 provider=fleet.provider)


def _new_side(path: Path, to_rev: str | None, today: dt.date) -> tuple[Fleet | None,
                                                                           list[Problem]]:
    if to_rev is None or to_rev == WORKTREE:
        return check_fleet(path, today=today)
    text = previous_text(path, to_rev)
    if text is None:
        return None, [Problem("", f"there is no fleet file {path.name} at {to_rev}")]
    return check_fleet(path, today=today, text=text)


def _old_side(path: Path, from_rev: str, new: Fleet) -> tuple[Fleet, list[Problem]]:
    text = previous_text(path, from_rev)
    if text is None:
        return _empty_like(new, path), []
    data, problems = read_yaml(text)
    fleet, schema_problems = (None, []) if problems else parse(data, path)
    problems += schema_problems
    if fleet is None and not problems:
        problems = [Problem("", "cannot be read")]
    shown = [Problem(p.location, f"(the fleet at {from_rev}) {p.message}") for p in problems]
    return (fleet or _empty_like(new, path)), shown


def load_revisions(path: Path, source: str, from_rev: str, to_rev: str | None,
                   today: dt.date) -> Revisions:
    """Both fleets, or FleetInvalid with every problem. HistoryUnavailable for a bad revision."""
    after, problems = _new_side(path, to_rev, today)
    if after is not None:
        problems += check_against(after, path, from_rev, today=today)
    if after is None or problems:
        raise FleetInvalid(source, problems)
    before, old_problems = _old_side(path, from_rev, after)
    if old_problems:
        raise FleetInvalid(source, old_problems)
    return Revisions(before, after)
