"""How long the Pulumi program takes to declare a fleet, under Pulumi's mocks.

Runs the real program (components, filter rendering, cloud-init, XSLT) against the mock
monitor of tests/pulumi/harness.py, for the example production fleet and for generated fleets
of growing size (up to 2,000 guests on 100 hosts), and prints wall time and resource count.
The engine's own work (diffs, provider calls) is not included: it cannot run here.

    .venv/bin/python benchmarks/pulumi_mocks.py
"""

from __future__ import annotations

import dataclasses
import ipaddress
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.pulumi.harness import run_program  # noqa: E402
from vpsfleet import load_fleet  # noqa: E402
from vpsfleet.fleet import Fleet  # noqa: E402
from vpsfleet.schema import Capacity, Datacenter, Guest, Pool  # noqa: E402

# RFC 2544's benchmarking range: big enough for 2,000 guests, never routed anywhere.
BENCH_NET = ipaddress.IPv4Network("198.18.0.0/15")


def generated(base: Fleet, hosts: int, guests: int) -> Fleet:
    """`guests` guests spread over `hosts` hosts in one datacenter, with the base fleet's
    provider, policy, plans, offers and customers; every fourth guest has an SMTP block
    history, every tenth a filter override."""
    pool = Pool(name="bench-public", network=BENCH_NET, gateway=BENCH_NET[1])
    dc = Datacenter(code="bench1", city="Paris", country="FR",
                    dns_resolvers=[BENCH_NET[2]], pools=[pool])
    template = base.hosts[0]
    host_list = [
        template.model_copy(update={
            "name": f"hv-bench-{i:03d}", "datacenter": "bench1",
            "uri": f"qemu+ssh://pulumi@hv-bench-{i:03d}.example.net/system"
                   "?keyfile=/k&knownhosts=/kh",
            "capacity": Capacity(vcpu=256, ram_mb=1024 * 1024, disk_gb=100_000),
        })
        for i in range(hosts)
    ]
    examples = base.live_guests()
    guest_list: list[Guest] = []
    for i in range(guests):
        model = examples[i % len(examples)]
        guest_list.append(model.model_copy(update={
            "name": f"bench-{i:05d}",
            "host": host_list[i % hosts].name,
            "ipv4": BENCH_NET[10 + i],
        }))
    return dataclasses.replace(base, datacenters=[*base.datacenters, dc], hosts=host_list,
                               guests=guest_list, dedicated_servers=[])


def measure(fleet: Fleet, repeat: int = 3) -> tuple[float, float, int]:
    """Median wall and CPU seconds (CPU time is what a shared machine's load does not inflate),
    and the resource count."""
    walls, cpus, count = [], [], 0
    for _ in range(repeat):
        wall, cpu = time.perf_counter(), time.process_time()
        run = run_program(fleet)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
        count = len(run.registrations)
    return statistics.median(walls), statistics.median(cpus), count


def main() -> None:
    production = load_fleet(REPO / "inventories" / "example-production" / "fleet.yml")
    cases: list[tuple[str, Fleet, int]] = [
        ("example-production", production, len(production.live_guests())),
    ]
    for hosts, guests in ((25, 500), (50, 1000), (100, 2000)):
        cases.append((f"generated {guests} guests / {hosts} hosts",
                      generated(production, hosts, guests), guests))
    print(f"{'fleet':<36} {'guests':>7} {'resources':>10} {'wall s':>8} {'cpu s':>8} "
          f"{'cpu ms/guest':>13}")
    for label, fleet, guests in cases:
        wall, cpu, resources = measure(fleet, repeat=3 if guests < 1000 else 1)
        print(f"{label:<36} {guests:>7} {resources:>10} {wall:>8.2f} {cpu:>8.2f} "
              f"{1000 * cpu / guests:>13.2f}")


if __name__ == "__main__":
    main()
