"""Benchmark of the backup window planner (issue 6): a generated fleet of 500 guests on one store,
sizes drawn (seeded) from a long-tailed distribution as last-run bytes; prints each store
configuration's makespan against the lower bound (total bytes / store bandwidth, or the longest
single run), the guests that do not fit, and the planning time. Method: docs/benchmarks-backup.md.

    .venv/bin/python benchmarks/backup_plan.py [--guests 500]
"""

from __future__ import annotations

import argparse
import dataclasses
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from vpsfleet import load_fleet
from vpsfleet.backup_plan import Assumptions, plan_night
from vpsfleet.environments import fleet_path
from vpsfleet.schema import Plan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guests", type=int, default=500)
    args = parser.parse_args()
    rng = random.Random(500)
    lab = load_fleet(fleet_path("lab"))
    template = next(g for g in lab.guests if lab.backup_enabled(g))
    plan = Plan(
        name="bench", vcpu=2, ram_mb=2048, disk_gb=80, bandwidth_mbps=1000,
        monthly_quota_tb=10, throttle_mbps=1,
    )  # fmt: skip
    guests = [
        template.model_copy(update={"name": f"g{i:04d}", "plan": "bench", "ipv4": None})
        for i in range(args.guests)
    ]
    # Most guests hold little, a few hold a lot: log-normal around 2 GB, capped at 60 GB.
    metrics = {g.name: int(min(60e9, rng.lognormvariate(21.4, 1.1))) for g in guests}
    total = sum(metrics.values())
    print(f"{args.guests} guests, {total / 1e9:.0f} GB expected in total "
          f"(median {sorted(metrics.values())[len(metrics) // 2] / 1e9:.1f} GB, "
          f"largest {max(metrics.values()) / 1e9:.1f} GB)")  # fmt: skip
    assume = dataclasses.replace(Assumptions(), growth=1.0)
    print(
        f"{'store':>22} {'makespan':>9} {'bw bound':>9} {'ratio':>6} {'slot bound':>11} "
        f"{'ratio':>6} {'late':>5} {'plan ms':>8}"
    )
    for bandwidth, connections in ((1000, 8), (2500, 16), (10000, 32), (10000, 64)):
        store = lab.backup_stores[0].model_copy(
            update={"bandwidth_mbps": bandwidth, "max_connections": connections}
        )
        fleet = dataclasses.replace(lab, plans=[plan], guests=guests, backup_stores=[store])
        began = time.perf_counter()
        night = plan_night(fleet, metrics, assume)
        elapsed = (time.perf_counter() - began) * 1000
        [result] = night.stores
        bound = result.lower_bound_s
        # What the planner's own model allows at best: its runs spread evenly on the slots.
        runs = [s.job.seconds for s in result.slots + result.late]
        slot_bound = max(sum(runs) / connections, max(runs))
        makespan = result.makespan_s
        print(
            f"{bandwidth:>6} Mbit/s x {connections:>3} conn {makespan / 60:>8.0f}m "
            f"{bound / 60:>8.0f}m {makespan / max(bound, 1):>6.2f} {slot_bound / 60:>10.0f}m "
            f"{makespan / slot_bound:>6.2f} {len(result.late):>5} {elapsed:>8.1f}"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
