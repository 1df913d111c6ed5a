"""Checks of a change against the fleet file's previous version in git (GitOps review).

Only the previous file's raw data is read: an old file need not pass today's schema. What is
compared is what a customer's contract fixes: the datacenter (M10), the disk never shrinks (M9),
the address never changes (M3), a guest never changes customer, and a guest is never dropped
without being terminated (M11). A terminated guest's entry, and a quarantine entry, stay until
the store has erased the guest's backups and the address has waited its quarantine (M11, M3).
A mitigation on at the previous version is neither removed nor shortened before its minimum
(M28): the minimum its offer gave it then, counted from its `since`.

Identities (`created`, see schema.py): credentials are derived from `name@created`. A new
`created` on a live guest or customer is a new identity, i.e. a rotation of its credentials,
and is accepted. A new identity under the name of a terminated guest is a new guest taking an
old name: accepted only once the old entry could be removed. A customer's new identity is
refused while a terminated guest's backups are still kept in its store folder.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpsfleet.filters import mitigation_minimum_hours
from vpsfleet.fleet import Fleet
from vpsfleet.loader import policy_defaults, read_yaml
from vpsfleet.problems import Problem, item_path
from vpsfleet.schema import Guest, GuestState


class HistoryUnavailable(Exception):
    pass


def previous_text(path: Path, rev: str) -> str | None:
    """The file as it was at `rev`, or None if it did not exist then."""
    folder = path.resolve().parent
    spec = f"{rev}:./{path.name}"
    try:
        subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            check=True, capture_output=True, text=True,
        )
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        raise HistoryUnavailable(f"{rev!r} is not a commit of the repository holding "
                                 f"{path}") from err
    shown = subprocess.run(
        ["git", "-C", str(folder), "show", spec], capture_output=True, text=True, check=False
    )
    if shown.returncode != 0:
        return None
    return shown.stdout


def _named(items: Any, key: str = "name") -> dict[str, dict[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {i[key]: i for i in items if isinstance(i, dict) and isinstance(i.get(key), str)}


def _day(value: Any) -> dt.date | None:
    """A date of the old file, as loosely as it may have been written then."""
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            return None
    return None


@dataclass(frozen=True)
class Departure:
    """When a terminated guest's entry may leave the file, and what holds it until then."""

    earliest: dt.date
    reasons: tuple[str, ...]


def departure(fleet: Fleet, before: dict[str, Any], today: dt.date) -> Departure | None:
    """What still ties the old, terminated entry `before` to the file on `today`, or None if it
    may go: its backups are erased on its termination date, so the store must still hear of it
    that day (M11); and an address it still holds is freed with it, so it must have been
    released into quarantine or have waited the quarantine since the termination (M3)."""
    terminated = _day(before.get("terminated_on"))
    if terminated is None:
        return None
    reasons = []
    earliest = terminated + dt.timedelta(days=1)
    if today < earliest:
        reasons.append(f"the store erases its backups on {terminated} (M11)")
    address = before.get("ipv4")
    held = {str(a) for a in fleet.quarantined(today)}
    if address is not None and str(address) not in held:
        waited = terminated + dt.timedelta(days=fleet.policy.ipv4_quarantine_days)
        earliest = max(earliest, waited)
        if today < waited:
            reasons.append(f"its address {address} would be free at once: release it into "
                           f"quarantine first (vpsfleet ipam release), or wait until {waited} (M3)")
    return Departure(earliest, tuple(reasons)) if reasons else None


def compare(fleet: Fleet, old: Any, rev: str, today: dt.date,
            now: dt.datetime | None = None) -> list[Problem]:
    if not isinstance(old, dict):
        return []
    old_guests = _named(old.get("guests"))
    problems = _guest_changes(fleet, old, old_guests, rev, today)
    problems += _mitigations(fleet, old, old_guests, rev, now or judged_at(today))
    current = {g.name for g in fleet.guests}
    for name, before in old_guests.items():
        if name in current:
            continue
        if before.get("state") != GuestState.TERMINATED.value:
            problems.append(
                Problem("guests", f"{name} was removed while {before.get('state', 'active')}: "
                        "terminate it first (state: terminated, terminated_on: DATE) (M11)")
            )
        elif (held := departure(fleet, before, today)) is not None:
            problems.append(
                Problem("guests", f"{name} was removed too early: {'; '.join(held.reasons)}. "
                        f"Its entry may go from {held.earliest} on")
            )
    problems += _quarantine_removed(fleet, old, today)
    problems += _customer_identities(fleet, old, rev, today)
    return problems


def _guest_changes(
    fleet: Fleet, old: dict[str, Any], old_guests: dict[str, dict[str, Any]], rev: str,
    today: dt.date,
) -> list[Problem]:
    old_hosts = _named(old.get("hosts"))
    old_plans = _named(old.get("plans"))
    problems: list[Problem] = []
    for i, guest in enumerate(fleet.guests):
        before = old_guests.get(guest.name)
        if before is None:
            continue
        at = fleet.where("guests", i)
        old_created = _day(before.get("created"))
        new_identity = old_created is not None and old_created != guest.created
        if before.get("state") == GuestState.TERMINATED.value:
            # A new identity under a terminated name replaces the old entry: allowed when
            # removing that entry would be (its store tree erased, its address quarantined).
            held = departure(fleet, before, today) if new_identity else None
            if held is not None:
                problems.append(
                    Problem(item_path("guests", at, "created"), f"{guest.name} (created "
                            f"{old_created}) was terminated at {rev}: a new guest may take its "
                            f"name from {held.earliest} on, not before ({'; '.join(held.reasons)})")
                )
            elif not new_identity and guest.state is not GuestState.TERMINATED:
                problems.append(
                    Problem(item_path("guests", at, "state"), f"{guest.name} was terminated at "
                            f"{rev}: its data is gone (M11); declare a new guest instead")
                )
            continue
        old_customer = before.get("customer")
        if isinstance(old_customer, str) and old_customer != guest.customer:
            problems.append(
                Problem(item_path("guests", at, "customer"), f"gives {guest.name} of "
                        f"{old_customer} to {guest.customer}: a guest's data and backups belong "
                        "to its customer; terminate it and declare a new guest (M11)")
            )
        if guest.state is GuestState.TERMINATED:
            continue
        old_host = old_hosts.get(str(before.get("host")), {})
        old_dc = old_host.get("datacenter")
        new_dc = fleet.guest_datacenter(guest)
        if old_dc is not None and new_dc is not None and old_dc != new_dc:
            problems.append(
                Problem(item_path("guests", at, "host"), f"moves {guest.name} from datacenter "
                        f"{old_dc} to {new_dc}: the datacenter choice is final (M10)")
            )
        old_disk = old_plans.get(str(before.get("plan")), {}).get("disk_gb")
        plan = fleet.plan(guest.plan)
        if isinstance(old_disk, int) and plan is not None and plan.disk_gb < old_disk:
            problems.append(
                Problem(item_path("guests", at, "plan"), f"plan {plan.name} would shrink "
                        f"{guest.name}'s disk from {old_disk} GB to {plan.disk_gb} GB: a disk "
                        "only grows (M9)")
            )
        old_ip = before.get("ipv4")
        if old_ip is not None and guest.ipv4 is not None and str(guest.ipv4) != str(old_ip):
            problems.append(
                Problem(item_path("guests", at, "ipv4"), f"changes {guest.name}'s address from "
                        f"{old_ip} to {guest.ipv4}: a fixed IPv4 never changes while the "
                        "contract runs (M3)")
            )
    return problems


# --- mitigations (M28) --------------------------------------------------------------------------


def judged_at(today: dt.date | None) -> dt.datetime:
    """The instant a mitigation's minimum is judged at: now, or 00:00 UTC of another day given
    as `today` (the earliest instant of that day: a removal is never accepted too early)."""
    now = dt.datetime.now(dt.UTC)
    if today is None or today == now.date():
        return now
    return dt.datetime.combine(today, dt.time(), dt.UTC)


def _instant(value: Any) -> dt.datetime | None:
    """An instant of the old file, as loosely as it may have been written then (UTC if naive)."""
    if isinstance(value, str):
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return None
    if not isinstance(value, dt.datetime):
        return None
    return value.astimezone(dt.UTC) if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _hours(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def _old_minimum(old: dict[str, Any], before: dict[str, Any]) -> int:
    """The minimum the old file gave the guest: its offer's, else its policy's, else the
    default policy's (what the old file did not override)."""
    offer = _named(old.get("offers")).get(str(before.get("offer")), {})
    policy = old.get("policy")
    mitigation = policy.get("mitigation") if isinstance(policy, dict) else None
    candidates = (offer.get("mitigation_minimum_hours"),
                  mitigation.get("minimum_hours") if isinstance(mitigation, dict) else None)
    for value in candidates:
        if (hours := _hours(value)) is not None:
            return hours
    return int(policy_defaults()["mitigation"]["minimum_hours"])


def _z(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _mitigations(fleet: Fleet, old: dict[str, Any], old_guests: dict[str, dict[str, Any]],
                 rev: str, now: dt.datetime) -> list[Problem]:
    problems: list[Problem] = []
    # A dedicated server's mitigation (kept at its edge router, edge_rules.py) is the same record.
    sections: list[tuple[str, list[Any], dict[str, dict[str, Any]]]] = [
        ("guests", list(fleet.guests), old_guests),
        ("dedicated_servers", list(fleet.dedicated_servers), _named(old.get("dedicated_servers"))),
    ]
    for section, items, olds in sections:
        for i, guest in enumerate(items):
            before = olds.get(guest.name)
            record = before.get("mitigation") if before is not None else None
            if not isinstance(record, dict) or guest.state is GuestState.TERMINATED:
                continue  # a terminated guest has no network left to protect (M11)
            assert before is not None
            since = _instant(record.get("since"))
            if since is None:
                continue
            hours = _old_minimum(old, before)
            earliest = since + dt.timedelta(hours=hours)
            if now >= earliest:
                continue  # past its minimum: it may end, or its record move or go
            problems += _kept_until(fleet, guest, section, fleet.where(section, i), since, hours,
                                    earliest, rev)
    return problems


def _kept_until(fleet: Fleet, guest: Guest, section: str, at: int, since: dt.datetime,
                hours: int, earliest: dt.datetime, rev: str) -> list[Problem]:
    """The mitigation on since `since` at `rev` must still be there, and end no earlier."""
    entries = [("mitigation",), *(("past_mitigations", n) for n in range(len(
        guest.past_mitigations)))]
    records = [guest.mitigation, *guest.past_mitigations]
    found = [(where, m) for where, m in zip(entries, records, strict=True)
             if m is not None and _instant(m.since) == since]
    on = (f"{guest.name}'s mitigation on since {_z(since)} at {rev} may end from {_z(earliest)} "
          f"on, not before ({hours} h, M28)")
    if not found:
        return [Problem(item_path(section, at, "mitigation"),
                        f"removes it: {on}; record its end then with `vpsfleet mitigation stop`")]
    where, kept = found[0]
    problems = []
    ends = _instant(kept.ends_at)
    if ends is not None and ends < earliest:
        problems.append(Problem(item_path(section, at, *where, "ends_at"),
                                f"ends it at {_z(ends)}, which shortens it: {on}"))
    new_hours = mitigation_minimum_hours(fleet, guest)
    if new_hours < hours:
        problems.append(Problem(item_path(section, at, "offer"),
                                f"its minimum would drop from {hours} h to {new_hours} h "
                                f"(offer {guest.offer}), which shortens it: {on}"))
    return problems


def _quarantine_removed(fleet: Fleet, old: dict[str, Any], today: dt.date) -> list[Problem]:
    """A quarantine entry stays until its quarantine is over (M3), whatever the order."""
    problems: list[Problem] = []
    entries = old.get("quarantine")
    days = dt.timedelta(days=fleet.policy.ipv4_quarantine_days)
    kept = fleet.latest_releases
    for entry in entries if isinstance(entries, list) else []:
        released = _day(entry.get("released_on")) if isinstance(entry, dict) else None
        if released is None or released + days <= today:
            continue
        address = str(entry.get("ipv4"))
        now = next((q for a, q in kept.items() if str(a) == address), None)
        if now is None or now.released_on < released:
            problems.append(
                Problem("quarantine", f"the quarantine of {address} (released from "
                        f"{entry.get('guest')} on {released}) was removed before it ends on "
                        f"{released + days} (M3)")
            )
    return problems


def _customer_identities(fleet: Fleet, old: dict[str, Any], rev: str,
                         today: dt.date) -> list[Problem]:
    """A customer's new identity (another `created`) rotates its read account's password; the
    account opens /<customer>/ on the store, so it may not while a terminated guest's backups
    are still kept there (until their erasure on the termination date, M11)."""
    problems: list[Problem] = []
    old_customers = _named(old.get("customers"), "id")
    for i, customer in enumerate(fleet.customers):
        old_created = _day(old_customers.get(customer.id, {}).get("created"))
        if old_created is None or old_created == customer.created:
            continue
        pending = sorted(
            (g.terminated_on, g.name) for g in fleet.guests
            if g.customer == customer.id and g.terminated_on is not None and g.terminated_on >= today
        )
        if pending:
            names = ", ".join(name for _day_, name in pending)
            last = pending[-1][0]
            problems.append(
                Problem(item_path("customers", fleet.where("customers", i), "created"),
                        f"{customer.id} gets a new identity (created {old_created} at {rev}, now "
                        f"{customer.created}) while the backups of its terminated guests "
                        f"({names}) are kept on the store until {last} (M11): the new identity "
                        f"would read them; change it after {last}")
            )
    return problems


def check_against(
    fleet: Fleet, path: Path, rev: str, *, today: dt.date | None = None,
    now: dt.datetime | None = None,
) -> list[Problem]:
    """`now`: the instant mitigations are judged at (default: see `judged_at`)."""
    text = previous_text(path, rev)
    if text is None:
        return []
    old, problems = read_yaml(text)
    if problems:
        return []  # a broken old file fixes nothing about the new one
    return compare(fleet, old, rev, today or dt.date.today(), now or judged_at(today))
