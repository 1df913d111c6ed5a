"""Benchmark of the backup window planner (issues 6, 15): a generated fleet of 500 guests on one
store, sizes drawn (seeded) from a long-tailed distribution as last-run bytes; prints for each
store configuration the plan's makespan (the end of the last guest that fits), the bandwidth
bound (the sets built after any time t take t plus their bytes at the store's bandwidth: total
bytes / bandwidth after the first set; or the longest run alone), the connection bound (the
uploads, each at least as long as alone, spread perfectly over the connections after the first
set is built), the makespan over the larger bound, the oversubscription the plan chose ("over":
its uploads' ceilings over the store's bandwidth, at most), the guests that do not fit, the
planning time, the issue-6 planner's figure, and the jitter simulation over N seeded nights: the
last guest's end at the 95th percentile, against the plan, past the window's end, the longest
wait for a free connection (a refused set runs again after the agent's back-off), in how many
nights some guest ends past the hard stop, and in how many some guest is refused at every
attempt ("failing"). Method: docs/benchmarks-backup.md.

    .venv/bin/python benchmarks/backup_plan.py [--guests 500] [--jitter 200]
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
from vpsfleet.backup_plan import Assumptions, jitter_night, plan_night, simulate_plan
from vpsfleet.environments import fleet_path
from vpsfleet.schema import Plan

# The issue-6 planner (each connection at bandwidth / connections, production inside the slot),
# from docs/benchmarks-backup.md: makespan, and guests not fitting.
ISSUE_6 = {
    (1000, 8): "418 late",
    (2500, 16): "155m",
    (10000, 32): "54m",
    (10000, 64): "50m",
}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--guests", type=int, default=500)
    parser.add_argument("--jitter", type=int, default=200, metavar="N", help="nights simulated")
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
    spread = dataclasses.replace(assume.jitter, samples=args.jitter)
    print(f"jitter: {spread}")
    print(
        f"{'store':>22} {'makespan':>9} {'bw bound':>9} {'conn bound':>11} {'ratio':>6} "
        f"{'over':>4} {'late':>5} {'plan s':>7} {'issue 6':>8} {'p95 end':>8} {'p95 +':>7} "
        f"{'past end':>9} {'p95 wait':>9} {'past stop':>9} {'failing':>7}"
    )
    for bandwidth, connections in ((1000, 8), (2500, 16), (10000, 32), (10000, 64)):
        store = lab.backup_stores[0].model_copy(
            update={"bandwidth_mbps": bandwidth, "max_connections": connections}
        )
        fleet = dataclasses.replace(lab, plans=[plan], guests=guests, backup_stores=[store])
        began = time.perf_counter()
        night = plan_night(fleet, metrics, assume)
        elapsed = time.perf_counter() - began
        [result] = night.stores
        assert simulate_plan(result) == result.night  # the plan is its simulation
        # The night of the guests that fit (the late ones are reported, never started).
        makespan = result.planned_end_s
        bw_bound, conn_bound = result.bandwidth_bound_s, result.connection_bound_s
        jittered = jitter_night(result, spread)
        window_s = result.window_s
        past_end = max(0.0, jittered.last_end_p95_s - window_s)
        print(
            f"{bandwidth:>6} Mbit/s x {connections:>3} conn {makespan / 60:>8.1f}m "
            f"{bw_bound / 60:>8.1f}m {conn_bound / 60:>10.1f}m "
            f"{makespan / max(bw_bound, conn_bound, 1):>6.3f} {result.oversubscription:>4.1f} "
            f"{len(result.late):>5} {elapsed:>7.1f} {ISSUE_6[(bandwidth, connections)]:>8} "
            f"{jittered.last_end_p95_s / 60:>7.1f}m {jittered.lateness_p95_s / 60:>+6.1f}m "
            f"{past_end / 60:>8.1f}m {jittered.waited_p95_s / 60:>8.1f}m "
            f"{jittered.past_deadline:>9} {jittered.nights_with_failures:>7}",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
