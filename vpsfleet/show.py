"""`vpsfleet show`: the fleet at a glance, as plain-text tables."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Sequence

from vpsfleet import traffic_state
from vpsfleet.capacity import usage_by_host
from vpsfleet.fleet import Fleet
from vpsfleet.ipam import held_addresses, usable
from vpsfleet.prometheus import Prometheus, PrometheusBadAnswer, PrometheusUnreachable


def table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _ratio(used: float, limit: float) -> str:
    return f"{used:g}/{limit:g} ({100 * used / limit:.0f}%)" if limit else f"{used:g}/0"


def render(fleet: Fleet, today: dt.date) -> str:
    out = [f"environment {fleet.environment}: {len(fleet.datacenters)} datacenters, "
           f"{len(fleet.hosts)} hosts, {len(fleet.live_guests())} live guests "
           f"({len(fleet.guests)} declared), {len(fleet.dedicated_servers)} dedicated servers, "
           f"{len(fleet.backup_stores)} backup stores"]

    usages = usage_by_host(fleet)
    host_rows = []
    for host in fleet.hosts:
        u = usages[host.name]
        host_rows.append((host.name, host.datacenter, host.domain_type, u.guests,
                          _ratio(u.vcpu, u.vcpu_limit), _ratio(u.ram_mb, u.ram_limit_mb),
                          _ratio(u.disk_gb, u.disk_limit_gb),
                          f"cpu x{host.overcommit.cpu:g} ram x{host.overcommit.ram:g}"))
    out += ["", "Hosts (used/limit; CPU and RAM limits include the overcommit, disk has none)",
            table(("host", "dc", "type", "guests", "vCPU", "RAM MB", "disk GB", "overcommit"),
                  host_rows)]

    guest_rows = []
    for guest in fleet.guests:
        store = fleet.store_for(guest) if fleet.backup_enabled(guest) else None
        state = guest.state.value
        if guest.terminated_on:
            state += f" {guest.terminated_on}"
        guest_rows.append((guest.name, guest.ipv4 or "-", guest.host,
                           fleet.guest_datacenter(guest) or "?", guest.plan, guest.offer,
                           guest.customer, state, store.name if store else "-"))
    out += ["", "Guests", table(("guest", "ipv4", "host", "dc", "plan", "offer", "customer",
                                 "state", "backup store"), guest_rows)]

    if fleet.dedicated_servers:
        server_rows = []
        for server in fleet.dedicated_servers:
            due = fleet.dedicated_due_on(server)
            if server.delivered_on:
                status = f"delivered {server.delivered_on}"
            elif due < today:
                status = f"OVERDUE since {due} (M12)"
            else:
                status = f"due {due}"
            server_rows.append((server.name, server.ipv4 or "-", server.datacenter,
                                server.customer, status))
        out += ["", "Dedicated servers",
                table(("server", "ipv4", "dc", "customer", "delivery"), server_rows)]

    taken = held_addresses(fleet)
    waiting = fleet.quarantined(today)
    in_pool: Counter[str] = Counter()
    quarantined: Counter[str] = Counter()
    pool_rows = []
    for dc in fleet.datacenters:
        for pool in dc.pools:
            size = sum(1 for _ in usable(fleet, pool))
            for address in taken:
                if address in pool.network:
                    in_pool[pool.name] += 1
            for address in waiting - taken:
                if address in pool.network:
                    quarantined[pool.name] += 1
            free = size - in_pool[pool.name] - quarantined[pool.name]
            pool_rows.append((pool.name, dc.code, pool.network, pool.gateway, size,
                              in_pool[pool.name], quarantined[pool.name], free))
    out += ["", "IPv4 pools", table(("pool", "dc", "network", "gateway", "usable", "used",
                                     "quarantined", "free"), pool_rows)]
    return "\n".join(out)


def render_traffic(fleet: Fleet, prometheus_url: str | None, now: dt.datetime) -> str:
    """The traffic quota's state per live guest (M8) from the monitor's Prometheus; one line
    instead of the table when it cannot be read."""
    if prometheus_url is None:
        return "Traffic this cycle (M8): not shown, the fleet declares no monitor: give --prometheus URL"
    try:
        state = traffic_state.read(Prometheus(prometheus_url, timeout=traffic_state.TIMEOUT), now)
    except (PrometheusUnreachable, PrometheusBadAnswer) as err:
        return traffic_state.failure_line(prometheus_url, err)
    if not state.guests and not state.last_runs:
        return (f"Traffic this cycle (M8): {prometheus_url} holds no vpsfleet_traffic_* series: the "
                "hypervisors' node exporters are not scraped, or their traffic job never ran")
    out = [*traffic_state.header(state, fleet.policy.sla.time_zone),
           table(("guest", "host", "outbound", "quota", "used", "state"),
                 traffic_state.rows(fleet, state))]
    unknown = traffic_state.unknown_guests(fleet, state)
    if unknown:
        out.append(f"  reported but not live in the fleet: {', '.join(unknown)}")
    return "\n".join(out)
