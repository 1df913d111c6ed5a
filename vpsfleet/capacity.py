"""What each hypervisor host's guests use of it, against what it offers (M2)."""

from __future__ import annotations

from dataclasses import dataclass

from vpsfleet.fleet import Fleet


@dataclass(frozen=True)
class HostUsage:
    host: str
    guests: int
    vcpu: int
    vcpu_limit: float  # physical vCPU x CPU overcommit ratio
    ram_mb: int
    ram_limit_mb: float  # physical RAM x RAM overcommit ratio
    disk_gb: int
    disk_limit_gb: int  # never overcommitted


def usage_by_host(fleet: Fleet) -> dict[str, HostUsage]:
    """Live guests (active or suspended) hold their plan's resources; terminated ones do not."""
    totals: dict[str, list[int]] = {host.name: [0, 0, 0, 0] for host in fleet.hosts}
    for guest in fleet.live_guests():
        plan = fleet.plan(guest.plan)
        if plan is None or guest.host not in totals:
            continue
        total = totals[guest.host]
        total[0] += 1
        total[1] += plan.vcpu
        total[2] += plan.ram_mb
        total[3] += plan.disk_gb
    usage: dict[str, HostUsage] = {}
    for host in fleet.hosts:
        count, vcpu, ram, disk = totals[host.name]
        usage.setdefault(
            host.name,
            HostUsage(
                host=host.name,
                guests=count,
                vcpu=vcpu,
                vcpu_limit=host.capacity.vcpu * host.overcommit.cpu,
                ram_mb=ram,
                ram_limit_mb=host.capacity.ram_mb * host.overcommit.ram,
                disk_gb=disk,
                disk_limit_gb=host.capacity.disk_gb,
            ),
        )
    return usage
