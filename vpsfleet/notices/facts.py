"""What a notice says, gathered from its change and the fleet: the templates' context.

Only facts: addresses, dates, durations, numbers from the policy, the customer's keys. The
templates word them. The password of an access-codes notice is asked for through `password`
(a callable) only when the notice needs it, so a run without a managed guest to announce needs
no seed at all.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from vpsfleet.access_codes import initial_password
from vpsfleet.deploy_changes import Change
from vpsfleet.fleet import Fleet
from vpsfleet.schema import Customer, DedicatedServer, Guest, OfferKind

# On a managed VPS, the console account cloud-init gives the initial password to
# (pulumi/vpsfleet_infra/cloudinit.py CUSTOMER_USER; a test holds the two together).
MANAGED_CONSOLE_USER = "client"


class MissingFact(Exception):
    """The fleet lacks what a notice must say (the machine or its customer is gone)."""


@dataclass(frozen=True)
class Subject:
    """The machine a notice is about and who receives it."""

    machine: str
    customer: Customer
    guest: Guest | None
    server: DedicatedServer | None


def _instant(text: str | None) -> dt.datetime | None:
    if not text or text in ("none", "indefinite", "removed"):
        return None
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def _day(text: str | None) -> dt.date | None:
    if not text or text == "none":
        return None
    return dt.date.fromisoformat(text)


def subject_of(fleet: Fleet, change: Change) -> Subject:
    guest = fleet.guest(change.machine)
    server = next((d for d in fleet.dedicated_servers if d.name == change.machine), None)
    owner = guest.customer if guest is not None else server.customer if server else None
    customer = fleet.customer(owner) if owner else None
    if customer is None:
        raise MissingFact(f"{change.machine}: no such machine or customer in the fleet")
    return Subject(change.machine, customer, guest, server)


def _keys(customer: Customer) -> list[str]:
    """Each key as its type and comment: enough to recognise it, nothing secret."""
    shown = []
    for key in customer.ssh_keys:
        parts = key.split()
        shown.append(f"{parts[0]} … {' '.join(parts[2:])}".strip() if len(parts) > 2 else parts[0])
    return shown


def _common(fleet: Fleet, subject: Subject, change: Change) -> dict[str, Any]:
    machine = subject.guest or subject.server
    address = getattr(machine, "ipv4", None)
    datacenter = fleet.guest_datacenter(subject.guest) if subject.guest else \
        subject.server.datacenter if subject.server else None
    place = fleet.datacenter(datacenter) if datacenter else None
    return {
        "machine": subject.machine,
        "customer_name": subject.customer.name,
        "address": str(address) if address is not None else None,
        "datacenter": datacenter,
        "city": place.city if place else None,
        "provider_name": fleet.provider.name,
        "support_email": fleet.provider.support_email,
        "promise": change.promise,
    }


def _managed(fleet: Fleet, guest: Guest | None) -> bool:
    offer = fleet.offer(guest.offer) if guest else None
    return offer is not None and offer.kind is OfferKind.MANAGED_VPS


def _access_codes(fleet: Fleet, subject: Subject, change: Change,
                  seed: Callable[[], str]) -> dict[str, Any]:
    guest = subject.guest
    plan = fleet.plan(guest.plan) if guest else None
    managed = _managed(fleet, guest)
    return {
        "managed": managed,
        # Unmanaged: the hand-over locks root's password (role guest_base), only keys remain.
        "console_user": MANAGED_CONSOLE_USER if managed else None,
        "password": initial_password(seed(), fleet.environment, subject.machine)
        if managed else None,
        "ssh_user": subject.customer.id if managed else "root",
        "keys": _keys(subject.customer),
        "plan": plan.name if plan else change.fact("plan"),
        "vcpu": plan.vcpu if plan else None,
        "ram_mb": plan.ram_mb if plan else None,
        "disk_gb": plan.disk_gb if plan else None,
    }


def _smtp_block(fleet: Fleet, subject: Subject, change: Change) -> dict[str, Any]:
    number = int(change.fact("block_number") or "1")
    machine = subject.guest or subject.server
    blocks = machine.smtp_blocks[:number] if machine else []
    durations = fleet.policy.smtp_block.durations_hours
    refuse_from = fleet.policy.smtp_block.refuse_unblock_from
    hours = change.fact("duration_hours")
    history = [{"blocked_at": b.blocked_at, "until": b.until, "reason": b.reason,
                "lifted_at": b.lifted_at} for b in blocks]
    return {
        "number": number,
        "blocked_at": _instant(change.fact("blocked_at")),
        "until": _instant(change.fact("until")),
        "duration_hours": int(hours) if hours and hours.isdigit() else None,
        "reason": change.fact("reason"),
        "history": history,
        # The duration a further block would take (M6: each lasts longer; the last repeats).
        "next_hours": durations[min(number, len(durations) - 1)],
        "refuse_unblock_from": refuse_from,
        "may_refuse": number >= refuse_from,
        "next_may_refuse": number + 1 >= refuse_from,
    }


def _network_cut(fleet: Fleet, subject: Subject, change: Change) -> dict[str, Any]:
    return {
        "suspended_on": _day(change.fact("suspended_on")),
        "management_networks": [str(n) for n in fleet.provider.management_networks],
    }


def _mitigation(fleet: Fleet, subject: Subject, change: Change) -> dict[str, Any]:
    profile = change.fact("profile") or ""
    return {
        "since": _instant(change.fact("since")),
        "profile": profile,
        "open_ports": list(fleet.policy.mitigation.profiles.get(profile, [])),
        "minimum_hours": int(change.fact("minimum_hours") or "0"),
        "earliest_end": _instant(change.fact("earliest_end")),
    }


def _termination(fleet: Fleet, subject: Subject, change: Change) -> dict[str, Any]:
    guest = subject.guest
    return {
        "terminated_on": _day(change.fact("terminated_on")),
        "backups_erased_on": _day(change.fact("backups_erased_on")),
        "had_backups": guest is not None and fleet.backup_enabled(guest),
    }


def _dedicated(fleet: Fleet, subject: Subject, change: Change) -> dict[str, Any]:
    return {
        "delivered_on": _day(change.fact("delivered_on")),
        "due_on": _day(change.fact("due_on")),
        "on_time": change.fact("on_time") == "yes",
        "delivery_days": fleet.policy.dedicated_delivery_days,
        "keys": _keys(subject.customer),
    }


def _plan_change(fleet: Fleet, subject: Subject, change: Change) -> dict[str, Any]:
    def pair(key: str) -> tuple[str, str] | None:
        value = change.fact(key)
        if value is None or " -> " not in value:
            return None
        old, new = value.split(" -> ", 1)
        return (old, new) if old != new else None  # only what changed

    return {
        "old_plan": change.fact("old_plan"),
        "new_plan": change.fact("new_plan"),
        "vcpu": pair("vcpu"),
        "ram_mb": pair("ram_mb"),
        "disk_gb": pair("disk_gb"),
        "bandwidth_mbps": pair("bandwidth_mbps"),
        "within_hours": int(change.fact("done_within_hours") or "0"),
    }


def context(kind: str, fleet: Fleet, change: Change, seed: Callable[[], str]) -> dict[str, Any]:
    """Every fact the notice of `kind` about `change` needs. `seed` gives the stack's password
    seed, asked for only by the access codes of a managed VPS."""
    subject = subject_of(fleet, change)
    facts = _common(fleet, subject, change)
    if kind == "access_codes":
        facts.update(_access_codes(fleet, subject, change, seed))
    elif kind == "smtp_block":
        facts.update(_smtp_block(fleet, subject, change))
    elif kind in ("network_cut", "resume"):
        facts.update(_network_cut(fleet, subject, change))
    elif kind == "mitigation_start":
        facts.update(_mitigation(fleet, subject, change))
    elif kind == "termination":
        facts.update(_termination(fleet, subject, change))
    elif kind == "dedicated_available":
        facts.update(_dedicated(fleet, subject, change))
    elif kind == "plan_change_done":
        facts.update(_plan_change(fleet, subject, change))
    else:
        raise MissingFact(f"no notice of kind {kind!r}")
    return facts
