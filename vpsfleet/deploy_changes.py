"""What changed between two parsed fleets: the facts a deploy acts on (issue 13).

Pure: two fleets and the instant they are judged at in, changes out, in a fixed order. Temporary
states (an SMTP block, a mitigation) are compared as they stand at that instant, so a block that
expired on its own is no change of a merge (the nightly run will compare one fleet at two
instants: `before_now`). Each change names the promise it concerns.

A revert gives the inverse changes (`INVERSE`): every kind has its opposite, even those that
`validate --against` refuses (a reinstated guest, M11), so the computation stays symmetric and
the refusal stays in one place (history.py).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from vpsfleet.filters import (
    mitigation_active,
    mitigation_ends_at,
    mitigation_minimum_hours,
    smtp_block_active,
)
from vpsfleet.fleet import Fleet
from vpsfleet.schema import DedicatedServer, Guest, GuestState, SmtpBlock


class Kind(StrEnum):
    # In the order a reader follows a machine's story; changes of one machine sort this way.
    GUEST_ADDED = "guest_added"
    GUEST_REMOVED = "guest_removed"  # a terminated guest's entry leaves the file
    GUEST_CHANGED = "guest_changed"
    PLAN_CHANGED = "plan_changed"
    GUEST_SUSPENDED = "guest_suspended"
    GUEST_RESUMED = "guest_resumed"
    SMTP_BLOCK_PLACED = "smtp_block_placed"
    SMTP_BLOCK_LIFTED = "smtp_block_lifted"
    MITIGATION_STARTED = "mitigation_started"
    MITIGATION_ENDED = "mitigation_ended"
    GUEST_TERMINATED = "guest_terminated"
    GUEST_REINSTATED = "guest_reinstated"  # refused by validate --against (M11)
    DEDICATED_ADDED = "dedicated_added"
    DEDICATED_REMOVED = "dedicated_removed"
    DEDICATED_CHANGED = "dedicated_changed"
    DEDICATED_DELIVERED = "dedicated_delivered"
    DEDICATED_UNDELIVERED = "dedicated_undelivered"


_PAIRS = (
    (Kind.GUEST_ADDED, Kind.GUEST_REMOVED),
    (Kind.GUEST_SUSPENDED, Kind.GUEST_RESUMED),
    (Kind.SMTP_BLOCK_PLACED, Kind.SMTP_BLOCK_LIFTED),
    (Kind.MITIGATION_STARTED, Kind.MITIGATION_ENDED),
    (Kind.GUEST_TERMINATED, Kind.GUEST_REINSTATED),
    (Kind.DEDICATED_ADDED, Kind.DEDICATED_REMOVED),
    (Kind.DEDICATED_DELIVERED, Kind.DEDICATED_UNDELIVERED),
)
INVERSE: dict[Kind, Kind] = {
    **{a: b for a, b in _PAIRS},
    **{b: a for a, b in _PAIRS},
    Kind.GUEST_CHANGED: Kind.GUEST_CHANGED,
    Kind.PLAN_CHANGED: Kind.PLAN_CHANGED,
    Kind.DEDICATED_CHANGED: Kind.DEDICATED_CHANGED,
}

PROMISE: dict[Kind, str] = {
    Kind.GUEST_ADDED: "M4",  # access codes after the order
    Kind.GUEST_REMOVED: "M11",
    Kind.GUEST_CHANGED: "M1",
    Kind.PLAN_CHANGED: "M9",
    Kind.GUEST_SUSPENDED: "M7",
    Kind.GUEST_RESUMED: "M7",
    Kind.SMTP_BLOCK_PLACED: "M6",
    Kind.SMTP_BLOCK_LIFTED: "M6",
    Kind.MITIGATION_STARTED: "M28",
    Kind.MITIGATION_ENDED: "M28",
    Kind.GUEST_TERMINATED: "M11",
    Kind.GUEST_REINSTATED: "M11",
    Kind.DEDICATED_ADDED: "M12",
    Kind.DEDICATED_REMOVED: "M12",
    Kind.DEDICATED_CHANGED: "M1",
    Kind.DEDICATED_DELIVERED: "M12",
    Kind.DEDICATED_UNDELIVERED: "M12",
}

GUEST = "guest"
DEDICATED = "dedicated server"
_KIND_RANK = {kind: rank for rank, kind in enumerate(Kind)}
_MACHINE_RANK = {GUEST: 0, DEDICATED: 1}

# Guest fields with kinds of their own; the rest are reported as GUEST_CHANGED fields.
_GUEST_OWN_KINDS = frozenset(
    {"name", "state", "suspended_on", "terminated_on", "plan", "smtp_blocks", "mitigation",
     "past_mitigations"}  # an ended mitigation moved aside when a new one starts
)
# A dedicated server's network record is compared as a guest's (kept at the edge router).
_DEDICATED_OWN_KINDS = frozenset({"name", "delivered_on", "state", "suspended_on", "smtp_blocks",
                                  "mitigation", "past_mitigations"})


@dataclass(frozen=True)
class FieldChange:
    name: str
    old: str
    new: str


@dataclass(frozen=True)
class Change:
    machine: str
    machine_kind: str  # GUEST or DEDICATED
    kind: Kind
    facts: tuple[tuple[str, str], ...] = ()
    fields: tuple[FieldChange, ...] = ()  # GUEST_CHANGED, DEDICATED_CHANGED

    @property
    def promise(self) -> str:
        return PROMISE[self.kind]

    def fact(self, key: str) -> str | None:
        return dict(self.facts).get(key)

    def sort_key(self) -> tuple[int, str, int]:
        return (_MACHINE_RANK[self.machine_kind], self.machine, _KIND_RANK[self.kind])


def _iso(value: Any) -> str:
    if value is None:
        return "none"
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat().replace("+00:00", "Z")
    if isinstance(value, dt.date):
        return value.isoformat()
    return str(value)


def _field_changes(old: Any, new: Any, skip: frozenset[str]) -> tuple[FieldChange, ...]:
    before, after = old.model_dump(mode="json"), new.model_dump(mode="json")
    return tuple(
        FieldChange(name, _iso(before.get(name)), _iso(after.get(name)))
        for name in sorted(set(before) | set(after))
        if name not in skip and before.get(name) != after.get(name)
    )


def _active_block(guest: Guest | DedicatedServer, now: dt.datetime) -> tuple[int, SmtpBlock] | None:
    for number, block in enumerate(guest.smtp_blocks, start=1):
        if smtp_block_active(block, now):
            return number, block
    return None


# --- guests ------------------------------------------------------------------------------------


def _guest_added(fleet: Fleet, guest: Guest) -> Change:
    facts = (
        ("customer", guest.customer),
        ("offer", guest.offer),
        ("plan", guest.plan),
        ("host", guest.host),
        ("datacenter", _iso(fleet.guest_datacenter(guest))),
        ("ipv4", _iso(guest.ipv4)),
        ("state", guest.state.value),
    )
    return Change(guest.name, GUEST, Kind.GUEST_ADDED, facts)


def _plan_change(before: Fleet, after: Fleet, old: Guest, new: Guest) -> list[Change]:
    if old.plan == new.plan:
        return []
    facts = [("old_plan", old.plan), ("new_plan", new.plan)]
    old_plan, new_plan = before.plan(old.plan), after.plan(new.plan)
    if old_plan is not None and new_plan is not None:
        for key in ("vcpu", "ram_mb", "disk_gb", "bandwidth_mbps"):
            facts.append((key, f"{getattr(old_plan, key)} -> {getattr(new_plan, key)}"))
    facts.append(("done_within_hours", str(after.policy.plan_change_max_hours)))  # M9
    return [Change(new.name, GUEST, Kind.PLAN_CHANGED, tuple(facts))]


def _state_change(old: Guest, new: Guest) -> list[Change]:
    """A guest's state, or (same record, same kinds) a dedicated server's suspend/resume."""
    was, now = old.state, new.state
    if was == now:
        return []
    if now is GuestState.TERMINATED:
        day = _iso(new.terminated_on)
        # M11: the backups are erased on the termination date itself.
        facts = (("terminated_on", day), ("backups_erased_on", day))
        return [Change(new.name, GUEST, Kind.GUEST_TERMINATED, facts)]
    if was is GuestState.TERMINATED:
        facts = (("terminated_on", _iso(old.terminated_on)), ("state", now.value))
        return [Change(new.name, GUEST, Kind.GUEST_REINSTATED, facts)]
    return _suspension_change(old, new, GUEST)


def _suspension_change(old: Guest | DedicatedServer, new: Guest | DedicatedServer,
                       section: str) -> list[Change]:
    """Suspended or resumed (M7): a guest's, or a dedicated server's at its edge router."""
    if old.state is new.state:
        return []
    if new.state is GuestState.SUSPENDED:
        return [Change(new.name, section, Kind.GUEST_SUSPENDED,
                       (("suspended_on", _iso(new.suspended_on)),))]
    return [Change(new.name, section, Kind.GUEST_RESUMED,
                   (("suspended_on", _iso(old.suspended_on)),))]


def _smtp_change(old: Guest | DedicatedServer, new: Guest | DedicatedServer,
                 before_now: dt.datetime, now: dt.datetime, section: str = GUEST) -> list[Change]:
    was, is_now = _active_block(old, before_now), _active_block(new, now)
    if was == is_now:
        return []
    changes = []
    if was is not None:
        number, block = was
        kept = next((b for b in new.smtp_blocks if b.blocked_at == block.blocked_at), None)
        facts = [("block_number", str(number)), ("blocked_at", _iso(block.blocked_at))]
        if kept is not None and kept.lifted_at is not None:
            facts += [("lifted_at", _iso(kept.lifted_at)), ("lift_reason", kept.lift_reason or ""),
                      ("forced", "yes" if kept.forced else "no")]
        elif kept is not None:
            facts.append(("expired_at", _iso(kept.until)))
        else:
            facts.append(("record", "removed from the history"))
        changes.append(Change(new.name, section, Kind.SMTP_BLOCK_LIFTED, tuple(facts)))
    if is_now is not None:
        number, block = is_now
        hours = ("indefinite" if block.until is None
                 else str(int((block.until - block.blocked_at).total_seconds() // 3600)))
        facts = [("block_number", str(number)), ("blocked_at", _iso(block.blocked_at)),
                 ("until", _iso(block.until) if block.until else "indefinite"),
                 ("duration_hours", hours), ("reason", block.reason)]
        changes.append(Change(new.name, section, Kind.SMTP_BLOCK_PLACED, tuple(facts)))
    return changes


def _mitigation_change(before: Fleet, after: Fleet, old: Guest | DedicatedServer,
                       new: Guest | DedicatedServer, before_now: dt.datetime, now: dt.datetime,
                       section: str = GUEST) -> list[Change]:
    old_hours = mitigation_minimum_hours(before, old)  # the guest's offer's (M28)
    new_hours = mitigation_minimum_hours(after, new)
    was = mitigation_active(old, old_hours, before_now)
    is_now = mitigation_active(new, new_hours, now)
    if was == is_now and (not was or old.mitigation == new.mitigation):
        return []
    changes = []
    if was and old.mitigation is not None:
        ended = new.mitigation if new.mitigation and new.mitigation.since == old.mitigation.since \
            else old.mitigation
        ends = mitigation_ends_at(ended, old_hours)
        changes.append(Change(new.name, section, Kind.MITIGATION_ENDED, (
            ("since", _iso(old.mitigation.since)), ("profile", old.mitigation.profile),
            ("ends_at", _iso(ends) if ends else "removed"),
        )))
    if is_now and new.mitigation is not None:
        since = new.mitigation.since
        earliest = since + dt.timedelta(hours=new_hours)
        changes.append(Change(new.name, section, Kind.MITIGATION_STARTED, (
            ("since", _iso(since)), ("profile", new.mitigation.profile),
            ("minimum_hours", str(new_hours)), ("earliest_end", _iso(earliest)),  # M28
        )))
    return changes


def _guest_changes(before: Fleet, after: Fleet, old: Guest, new: Guest,
                   before_now: dt.datetime, now: dt.datetime) -> list[Change]:
    if old.identity != new.identity and old.state is GuestState.TERMINATED:
        # A new guest under a terminated one's name: the old entry went, a new one came.
        return [Change(old.name, GUEST, Kind.GUEST_REMOVED,
                       (("terminated_on", _iso(old.terminated_on)),)),
                _guest_added(after, new)]
    changes = _state_change(old, new)
    if GuestState.TERMINATED in (old.state, new.state):
        return changes  # nothing else of a terminated guest runs anywhere (M11)
    fields = _field_changes(old, new, _GUEST_OWN_KINDS)
    if fields:
        changes.append(Change(new.name, GUEST, Kind.GUEST_CHANGED, fields=fields))
    changes += _plan_change(before, after, old, new)
    changes += _smtp_change(old, new, before_now, now)
    changes += _mitigation_change(before, after, old, new, before_now, now)
    return changes


# --- dedicated servers -------------------------------------------------------------------------


def _dedicated_network(before: Fleet, after: Fleet, old: DedicatedServer, new: DedicatedServer,
                       before_now: dt.datetime, now: dt.datetime) -> list[Change]:
    """What the edge router keeps for a dedicated server (004: M6, M7, M28): its cut, its SMTP
    block and its mitigation, the same kinds as a guest's."""
    changes = _suspension_change(old, new, DEDICATED)
    changes += _smtp_change(old, new, before_now, now, DEDICATED)
    changes += _mitigation_change(before, after, old, new, before_now, now, DEDICATED)
    return changes


def _dedicated_changes(before: Fleet, after: Fleet, old: DedicatedServer | None,
                       new: DedicatedServer | None, before_now: dt.datetime,
                       now: dt.datetime) -> list[Change]:
    if new is None:
        assert old is not None
        return [Change(old.name, DEDICATED, Kind.DEDICATED_REMOVED,
                       (("delivered_on", _iso(old.delivered_on)),))]
    due = after.dedicated_due_on(new)
    if old is None:
        changes = [Change(new.name, DEDICATED, Kind.DEDICATED_ADDED, (
            ("customer", new.customer), ("datacenter", new.datacenter), ("ipv4", _iso(new.ipv4)),
            ("paid_on", _iso(new.paid_on)), ("due_on", _iso(due)),  # M12
        ))]
        previously_delivered = None
    else:
        fields = _field_changes(old, new, _DEDICATED_OWN_KINDS)
        changes = [Change(new.name, DEDICATED, Kind.DEDICATED_CHANGED, fields=fields)] \
            if fields else []
        changes += _dedicated_network(before, after, old, new, before_now, now)
        previously_delivered = old.delivered_on
    if previously_delivered is None and new.delivered_on is not None:
        on_time = "yes" if new.delivered_on <= due else "no"
        changes.append(Change(new.name, DEDICATED, Kind.DEDICATED_DELIVERED, (
            ("delivered_on", _iso(new.delivered_on)), ("due_on", _iso(due)), ("on_time", on_time),
            ("ipv4", _iso(new.ipv4)),
        )))
    elif previously_delivered is not None and new.delivered_on is None:
        changes.append(Change(new.name, DEDICATED, Kind.DEDICATED_UNDELIVERED,
                              (("delivered_on", _iso(previously_delivered)),)))
    return changes


# --- the whole fleet ---------------------------------------------------------------------------


def changes_between(before: Fleet, after: Fleet, *, now: dt.datetime,
                    before_now: dt.datetime | None = None) -> tuple[Change, ...]:
    """Every change from `before` (judged at `before_now`, default `now`) to `after` (judged at
    `now`), sorted: guests then dedicated servers, by name, then by kind."""
    before_now = before_now or now
    changes: list[Change] = []
    old_guests = {g.name: g for g in before.guests}
    new_guests = {g.name: g for g in after.guests}
    for name in sorted(old_guests.keys() | new_guests.keys()):
        old, new = old_guests.get(name), new_guests.get(name)
        if old is None and new is not None:
            changes.append(_guest_added(after, new))
        elif new is None and old is not None:
            changes.append(Change(name, GUEST, Kind.GUEST_REMOVED,
                                  (("terminated_on", _iso(old.terminated_on)),)))
        elif old is not None and new is not None:
            changes += _guest_changes(before, after, old, new, before_now, now)
    old_servers = {d.name: d for d in before.dedicated_servers}
    new_servers = {d.name: d for d in after.dedicated_servers}
    for name in sorted(old_servers.keys() | new_servers.keys()):
        changes += _dedicated_changes(before, after, old_servers.get(name),
                                      new_servers.get(name), before_now, now)
    return tuple(sorted(changes, key=Change.sort_key))
