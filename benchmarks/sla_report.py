"""Benchmark of `vpsfleet sla report` (issue 14) against a real Prometheus: a generated fleet,
15 s probes of every guest backfilled for the first DAYS days of May 2026 (a share of guests with
one outage each), then the report over those days, timed, with what it asked of Prometheus.
Method and figures: docs/benchmarks-sla.md.

    .venv/bin/python benchmarks/sla_report.py [--guests 2000] [--days 2] [--faulty 0.05]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.fleet_generate import write_fleet
from tests.sla.conftest import serve_backfilled
from vpsfleet import sla_report
from vpsfleet.loader import load_fleet
from vpsfleet.prometheus import Prometheus
from vpsfleet.sla import month_bounds

STEP = 15


def write_probes(path: Path, guests: int, start: int, days: int, faulty: float) -> int:
    rng = random.Random(14)
    end = start + days * 86_400
    samples = 0
    with path.open("w") as out:
        out.write("# TYPE probe_success gauge\n")
        for g in range(guests):
            series = f'probe_success{{job="sla_icmp",guest="g{g}"}}'
            down = (-1, -1)
            if rng.random() < faulty:
                at = start + rng.randrange(0, days * 86_400 - 3600) // STEP * STEP
                down = (at, at + rng.randrange(60, 1800))
            out.writelines(
                f"{series} {0 if down[0] <= t < down[1] else 1} {t}\n"
                for t in range(start, end, STEP)
            )
            samples += (end - start) // STEP
        out.write("# EOF\n")
    return samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--guests", type=int, default=2000)
    parser.add_argument("--days", type=int, default=2)
    parser.add_argument("--faulty", type=float, default=0.05)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        fleet = load_fleet(write_fleet(folder / "fleet.yml", args.guests))
        start_ms, end_ms = month_bounds(2026, 5, sla_report.zone_of(fleet))
        began = time.perf_counter()
        samples = write_probes(folder / "probes.om", args.guests, start_ms // 1000, args.days,
                               args.faulty)
        written = time.perf_counter() - began
        began = time.perf_counter()
        server = serve_backfilled(folder, folder / "probes.om")
        url = next(server)
        loaded = time.perf_counter() - began
        try:
            prometheus = Prometheus(url)
            now = start_ms + args.days * 86_400_000  # the report of the days backfilled
            began = time.perf_counter()
            reports = sla_report.build(fleet, prometheus, start_ms, end_ms, now)
            wall = time.perf_counter() - began
        finally:
            server.close()
    cost = prometheus.cost
    faulty = sum(1 for r in reports if r.outcome.incidents)
    scale = 31 / args.days
    print(f"guests {args.guests}, days {args.days}, probe samples {samples:,} "
          f"({faulty} guests with an outage)")
    print(f"write OpenMetrics {written:.1f} s; promtool backfill + Prometheus start {loaded:.1f} s")
    print(f"report wall time {wall:.2f} s, of which waiting on Prometheus {cost.seconds:.2f} s")
    print(f"queries {cost.queries} ({cost.by_kind}), {cost.bytes_read / 1e6:.1f} MB read, "
          f"{cost.samples:,} values or samples returned")
    print(f"scaled to a 31-day month: about {wall * scale:.0f} s, {cost.queries * scale:.0f} "
          "queries")
    print(f"load: {os.getloadavg()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
