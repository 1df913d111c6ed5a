"""Generates large, valid fleet files for benchmarks (never used on a network: data only)."""

from __future__ import annotations

import ipaddress
from pathlib import Path

GUESTS_PER_HOST = 40
DATACENTERS = 4


def fleet_text(guests: int) -> str:
    hosts = max(1, -(-guests // GUESTS_PER_HOST))
    per_dc = -(-guests // DATACENTERS) + 16
    prefix = 32 - max(8, (per_dc + hosts + 8).bit_length())
    lines = [
        "environment: generated",
        "provider:",
        "  name: Bench",
        "  operations_email: ops@bench.example.net",
        "  support_email: support@bench.example.net",
        "  relay: {host: relay.bench.example.net, port: 587}",
        "  operators: [{name: ops, ssh_keys: [ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIBENCH ops]}]",
        "  management_networks: [10.0.0.0/30]",  # gateway and resolver of dc0: no machine there
        "datacenters:",
    ]
    networks = list(ipaddress.IPv4Network("10.0.0.0/8").subnets(new_prefix=prefix))[:DATACENTERS]
    for d, net in enumerate(networks):
        gateway = net.network_address + 1
        lines += [
            f"  - code: dc{d}",
            "    city: City",
            "    country: FR",
            f"    dns_resolvers: [{gateway + 1}]",
            f"    pools: [{{name: pool{d}, network: {net}, gateway: {gateway}, "
            f"reserved: [{gateway + 1}]}}]",
        ]
    lines.append("hosts:")
    for h in range(hosts):
        lines.append(
            f"  - {{name: hv{h}, datacenter: dc{h % DATACENTERS}, uri: 'qemu:///system', "
            "domain_type: kvm, capacity: {vcpu: 64, ram_mb: 262144, disk_gb: 8000}, "
            "overcommit: {cpu: 4.0, ram: 1.5}, bridge: br0, images: {debian-12: d.qcow2}}"
        )
    lines += [
        "plans:",
        "  - {name: s, vcpu: 1, ram_mb: 2048, disk_gb: 40, bandwidth_mbps: 100, "
        "monthly_quota_tb: 10, throttle_mbps: 1}",
        "offers:",
        "  - {name: managed, kind: managed_vps, root: provider, sla_percent: 99.5, backup: true, "
        "backup_retention_days: 15, restores_per_month: 2}",
        "customers:",
    ]
    customers = max(1, guests // 5)
    lines += [f"  - {{id: c{c}, created: 2026-01-05, name: Customer {c}, email: c{c}@example.com}}"
              for c in range(customers)]
    lines.append("guests:")
    next_address = [net.network_address + 10 for net in networks]
    for g in range(guests):
        h = g % hosts
        d = h % DATACENTERS
        address = next_address[d]
        next_address[d] += 1
        lines.append(
            f"  - {{name: g{g}, created: 2026-02-01, customer: c{g % customers}, offer: managed, plan: s, "
            f"host: hv{h}, image: debian-12, ipv4: {address}}}"
        )
    lines += [
        "backup_stores:",
        f"  - {{name: store-a, datacenter: dc0, address: {networks[0].network_address + 5}, "
        f"serves: [{', '.join(f'dc{d}' for d in range(1, DATACENTERS))}]}}",
        f"  - {{name: store-b, datacenter: dc1, address: {networks[1].network_address + 5}, "
        "serves: [dc0]}",
    ]
    return "\n".join(lines) + "\n"


def write_fleet(path: Path, guests: int) -> Path:
    path.write_text(fleet_text(guests))
    return path
