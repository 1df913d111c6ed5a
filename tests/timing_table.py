"""The table `make test` ends with: every part of the suite and its time, longest first.

Reads the JSON lines that scripts/lint.sh and the pytest hook in tests/conftest.py append to the
file named by VPSFLEET_TIMING: `{"part": "lint mypy", "seconds": 41}`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

BUDGET_MINUTES = 40  # the suite's budget on a two-core machine (CI allows 90)
TOTAL = "make test (wall clock)"
WALL = "(wall clock)"  # real time, shown after the parts: the parts overlap (two workers)


def render(lines: list[str]) -> str:
    rows: list[tuple[str, float]] = []
    for line in lines:
        if line.strip():
            entry = json.loads(line)
            rows.append((str(entry["part"]), float(entry["seconds"])))
    totals = sorted((row for row in rows if row[0].endswith(WALL)), key=lambda row: row[0] == TOTAL)
    parts = sorted((row for row in rows if not row[0].endswith(WALL)), key=lambda row: -row[1])
    out = ["", f"{'part':<52} {'minutes':>8}", "-" * 61]
    out += [f"{part:<52} {seconds / 60:>8.1f}" for part, seconds in parts]
    out.append("-" * 61)
    for part, seconds in totals:
        out.append(f"{part:<52} {seconds / 60:>8.1f}")
        if part == TOTAL and seconds / 60 > BUDGET_MINUTES:
            out.append(f"over the {BUDGET_MINUTES}-minute budget: see docs/test-suite.md")
    return "\n".join(out)


def main(argv: list[str]) -> int:
    print(render(Path(argv[0]).read_text(encoding="utf-8").splitlines()))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
