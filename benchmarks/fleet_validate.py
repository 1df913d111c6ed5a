"""Benchmark: fleet validation and `vpsfleet show` on generated fleets of growing size.

Prints, for each size, the best of N runs of: YAML parsing alone, the whole validation
(parse + schema + cross-checks, what `vpsfleet validate` does), and rendering `show` from the
loaded fleet (so `vpsfleet show` costs validate + show). Method: docs/benchmarks-fleet.md.
Run: .venv/bin/python -m benchmarks.fleet_validate [--sizes 1000 10000] [--runs 3]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.fleet_generate import write_fleet
from vpsfleet.loader import check_fleet, paused_gc, read_yaml
from vpsfleet.show import render


def parse_only(text: str) -> None:
    with paused_gc():
        read_yaml(text)


def best_of(runs: int, action: Callable[[], object]) -> float:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return min(timings)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    today = dt.date(2026, 11, 23)
    print(f"{'guests':>8} {'yaml s':>8} {'validate s':>11} {'show s':>8} {'validate us/guest':>18}")
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            path = write_fleet(Path(folder) / f"fleet-{size}.yml", size)
            text = path.read_text()
            fleet, problems = check_fleet(path, today=today)
            assert fleet is not None and not problems, problems[:3]
            yaml_s = best_of(args.runs, lambda text=text: parse_only(text))  # type: ignore[misc]
            validate_s = best_of(
                args.runs,
                lambda path=path: check_fleet(path, today=today),  # type: ignore[misc]
            )
            show_s = best_of(args.runs, lambda fleet=fleet: render(fleet, today))  # type: ignore[misc]
            print(f"{size:>8} {yaml_s:>8.3f} {validate_s:>11.3f} {max(show_s, 0):>8.3f} "
                  f"{1e6 * validate_s / size:>18.1f}")


if __name__ == "__main__":
    main()
