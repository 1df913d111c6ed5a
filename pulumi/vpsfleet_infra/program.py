"""The program: the fleet file in, hosts and guests declared, stack outputs out."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any

import pulumi
from vpsfleet import load_fleet
from vpsfleet.capacity import usage_by_host
from vpsfleet.fleet import Fleet
from vpsfleet.schema import GuestState
from vpsfleet_infra import identity
from vpsfleet_infra.components import Guest, Host


def check_identities(fleet: Fleet) -> None:
    """A MAC or interface name shared by two guests would break both: refuse the fleet."""
    for derive, what in ((identity.mac_address, "MAC"), (identity.interface_name, "interface")):
        seen: dict[str, str] = {}
        for guest in fleet.live_guests():
            value = derive(guest.name)
            if value in seen:
                raise ValueError(f"guests {seen[value]} and {guest.name} derive the same {what} "
                                 f"{value}: rename one")
            seen[value] = guest.name


def dedicated_servers(fleet: Fleet, today: dt.date) -> dict[str, dict[str, Any]]:
    """M12: each dedicated server's fixed IPv4 and due date; an overdue delivery is flagged."""
    report = {}
    for server in fleet.dedicated_servers:
        due = fleet.dedicated_due_on(server)
        report[server.name] = {
            "ipv4": str(server.ipv4) if server.ipv4 else None,
            "customer": server.customer,
            "due_on": due.isoformat(),
            "delivered_on": server.delivered_on.isoformat() if server.delivered_on else None,
            "overdue": server.delivered_on is None and today > due,
        }
    return report


def volume_urn(guest: str) -> str:
    """The URN of a guest's protected volume, for `pulumi state unprotect` once it is
    terminated (M11): deleting customer data always takes that deliberate step."""
    chain = "vpsfleet:infra:Host$vpsfleet:infra:Guest$libvirt:index/volume:Volume"
    return (f"urn:pulumi:{pulumi.get_stack()}::{pulumi.get_project()}::{chain}"
            f"::{identity.root_volume_name(guest)}")


def build(fleet: Fleet, *, now: dt.datetime, password_seed: pulumi.Output[str]) -> dict[str, Any]:
    """Declares every live guest of the fleet; a terminated guest has no resources (M11).
    Returns the stack outputs."""
    check_identities(fleet)
    hosts = {host.name: Host(host) for host in fleet.hosts}
    guests: dict[str, Guest] = {}
    for guest in fleet.guests:
        if guest.state is GuestState.TERMINATED:
            continue
        guests[guest.name] = Guest(fleet, guest, hosts[guest.host], now=now,
                                   password_seed=password_seed)
    usage = usage_by_host(fleet)
    return {
        "guests": {name: g.outputs for name, g in guests.items()},
        "initial_passwords": pulumi.Output.secret(
            {name: g.password for name, g in guests.items()}),
        "terminated": sorted(g.name for g in fleet.guests if g.state is GuestState.TERMINATED),
        "terminated_volumes": {g.name: volume_urn(g.name) for g in fleet.guests
                               if g.state is GuestState.TERMINATED},
        "hosts": {
            name: {
                "guests": u.guests,
                "vcpu": u.vcpu, "vcpu_limit": u.vcpu_limit,
                "ram_mb": u.ram_mb, "ram_limit_mb": u.ram_limit_mb,
                "disk_gb": u.disk_gb, "disk_limit_gb": u.disk_limit_gb,
            }
            for name, u in usage.items()
        },
        "dedicated_servers": dedicated_servers(fleet, now.date()),
    }


def main() -> None:
    config = pulumi.Config("vpsfleet")
    fleet = load_fleet(Path(config.require("fleet")))
    # `vpsfleet:now` pins the clock for a reproducible preview; SMTP blocks and mitigations
    # expire on the first `pulumi up` after their end.
    pinned = config.get("now")
    now = dt.datetime.fromisoformat(pinned) if pinned else dt.datetime.now(dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    outputs = build(fleet, now=now, password_seed=config.require_secret("passwordSeed"))
    for key, value in outputs.items():
        pulumi.export(key, value)
