"""`vpsfleet mitigation start|stop`: DDoS mitigation (M28) as fleet-file edits.

A mitigation stays on at least its guest's offer's minimum (`offers[].mitigation_minimum_hours`,
else `policy.mitigation.minimum_hours`: 24 h MENGINE, 26 h PHOSPHORE and ITSGOW) and cannot be
switched off earlier: `stop` before then is refused, and so is, in review, a change that removes
or shortens it (history.py). `stop` records the end (`ends_at`) and keeps the entry; a later
`start` moves the ended one to `past_mitigations`, so every period stays in the file for the SLA
report (which excludes them, M27) and for a dispute.

With the Pro option (`guests[].pro`) the customer's own profile is the one a start uses, and its
edge rules join the filter while the mitigation is on (filters.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from vpsfleet.filters import mitigation_earliest_end, mitigation_ends_at, mitigation_minimum_hours
from vpsfleet.fleet import Fleet
from vpsfleet.fleet_edit import (
    find_item,
    insert_after,
    load_document,
    put_trailing,
    take_trailing,
    utc,
    write_checked,
)
from vpsfleet.loader import FleetInvalid, check_fleet
from vpsfleet.schema import DedicatedServer, Guest, GuestState, Mitigation
from vpsfleet.values import one_line


class MitigationRefused(Exception):
    """The start or stop breaks a promise or does not apply; the fleet file is unchanged."""


@dataclass(frozen=True)
class Started:
    guest: str
    since: dt.datetime
    profile: str
    minimum_hours: int
    earliest_end: dt.datetime
    profile_from: str  # "operator", "pro option" or "policy default"


@dataclass(frozen=True)
class Stopped:
    guest: str
    since: dt.datetime
    ends_at: dt.datetime
    minimum_hours: int


def iso(moment: dt.datetime) -> str:
    return utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def _load(path: Path, now: dt.datetime) -> tuple[Fleet, Any]:
    fleet, problems = check_fleet(path, today=now.date())
    if problems or fleet is None:
        raise FleetInvalid(path, problems)
    return fleet, load_document(path)


def _guest(fleet: Fleet, doc: Any, name: str) -> tuple[Guest, CommentedMap]:
    """A guest, or a dedicated server (its mitigation is kept at its datacenter's edge router,
    edge_rules.py). A dedicated server carries the same record (state, offer, mitigation, pro)
    that everything here reads, so it is handled as one."""
    target: Guest | DedicatedServer | None = fleet.guest(name)
    if target is None:
        target = next((s for s in fleet.dedicated_servers if s.name == name), None)
    item = find_item(doc, ("guests", "dedicated_servers"), name)
    if target is None or item is None:
        known = (
            ", ".join(
                [g.name for g in fleet.live_guests()]
                + [s.name for s in fleet.dedicated_servers if s.state is not GuestState.TERMINATED]
            )
            or "none"
        )
        raise MitigationRefused(f"no guest named {name!r} nor dedicated server (live: {known})")
    return cast(Guest, target), item


def still_on(mitigation: Mitigation | None, minimum_hours: int, now: dt.datetime) -> bool:
    """Not yet ended: no end recorded, or one still ahead; never before its minimum, whatever
    the record says (filters.mitigation_ends_at). A start in the future counts as on."""
    if mitigation is None:
        return False
    ends = mitigation_ends_at(mitigation, minimum_hours)
    return ends is None or ends > utc(now)


def choose_profile(fleet: Fleet, guest: Guest, asked: str | None, *,
                   override_customer: bool = False) -> tuple[str, str]:
    """The profile a start uses and where it comes from. With the Pro option the customer's
    choice applies automatically (M28); an operator who must harden it says so explicitly."""
    profiles = fleet.policy.mitigation.profiles
    known = ", ".join(sorted(profiles))
    chosen = guest.pro.mitigation_profile if guest.pro is not None else None
    if asked is None:
        profile, source = (chosen, "pro option") if chosen else (
            fleet.policy.mitigation.default_profile, "policy default")
    else:
        if chosen and asked != chosen and not override_customer:
            raise MitigationRefused(
                f"guest {guest.name} has the Pro option and its customer chose profile "
                f"{chosen!r}, which applies automatically (M28): omit --profile, or pass "
                "--override-customer-profile to impose another")
        profile, source = asked, "operator"
    if profile not in profiles:
        raise MitigationRefused(f"unknown mitigation profile {profile!r} (known: {known})")
    return profile, source


def start(path: Path, name: str, *, profile: str | None, reason: str, now: dt.datetime,
          override_customer_profile: bool = False) -> Started:
    now = utc(now).replace(microsecond=0)
    fleet, doc = _load(path, now)
    guest, item = _guest(fleet, doc, name)
    if guest.state is not GuestState.ACTIVE:
        raise MitigationRefused(f"guest {name} is {guest.state.value}, not active")
    hours = mitigation_minimum_hours(fleet, guest)
    current = guest.mitigation
    if current is not None and still_on(current, hours, now):
        earliest = mitigation_earliest_end(current, hours)
        raise MitigationRefused(
            f"guest {name} is already under mitigation since {iso(current.since)} (profile "
            f"{current.profile}); it may end from {iso(earliest)} on ({hours} h, M28)")
    chosen, source = choose_profile(fleet, guest, profile,
                                    override_customer=override_customer_profile)
    if not reason.strip():
        raise MitigationRefused("a reason is required (what detected the attack)")
    try:
        reason = one_line(reason.strip())
    except ValueError as err:
        raise MitigationRefused(f"--reason: {err}") from None
    entry = CommentedMap([("since", now), ("profile", chosen), ("reason", reason)])
    _replace_current(item, entry)
    write_checked(path, doc, now.date())
    return Started(name, now, chosen, hours, now + dt.timedelta(hours=hours), source)


def _replace_current(item: CommentedMap, entry: CommentedMap) -> None:
    """The new mitigation takes the `mitigation` key; an ended one goes to the end of
    `past_mitigations`. What followed the guest in the file stays after it."""
    old = item.get("mitigation")
    if old is None:
        trailing = take_trailing(item)
        if "mitigation" in item:
            item["mitigation"] = entry
        else:
            insert_after(item, "smtp_blocks", [("mitigation", entry)])
        put_trailing(item, trailing)
        return
    trailing = take_trailing(item)
    item["mitigation"] = entry
    past = item.get("past_mitigations")
    if past is None:
        past = CommentedSeq()
        insert_after(item, "mitigation", [("past_mitigations", past)])
    past.append(old)
    put_trailing(item, trailing)


def stop(path: Path, name: str, *, now: dt.datetime) -> Stopped:
    now = utc(now).replace(microsecond=0)
    fleet, doc = _load(path, now)
    guest, item = _guest(fleet, doc, name)
    if guest.state is GuestState.TERMINATED:
        raise MitigationRefused(f"guest {name} is terminated")
    current = guest.mitigation
    hours = mitigation_minimum_hours(fleet, guest)
    if current is None or not still_on(current, hours, now):
        raise MitigationRefused(f"guest {name} has no mitigation on")
    earliest = mitigation_earliest_end(current, hours)
    if now < earliest:
        raise MitigationRefused(
            f"guest {name}: the mitigation since {iso(current.since)} cannot be switched off "
            f"before {iso(earliest)} ({hours} h minimum of offer {guest.offer}, M28)")
    record = item["mitigation"]
    if "ends_at" in record:
        record["ends_at"] = now  # an end planned later: it ends now
    else:
        insert_after(record, "profile", [("ends_at", now)])
    write_checked(path, doc, now.date())
    return Stopped(name, utc(current.since), now, hours)
