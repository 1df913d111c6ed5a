"""Suite-wide hooks: how the suite is spread over two processes, and the per-part timing table
printed at the end of every run.

Two workers (pytest-xdist, `-n 2`, given by scripts/test.sh): the Molecule scenarios
spend much of their time waiting on containers booting and on SSH round trips, so two of them
run side by side; everything else (unit, property, real-server and libvirt tests) stays in one
group on one worker, in its usual order, since several of those start servers of their own.
The longest scenario (the whole site) is handed out first so that it does not finish alone.

A part is a folder of tests/ (`fleet`, `backup`, ...), and each Molecule scenario on its own, since
those are what the suite's time budget is spent on (CI has 90 minutes; the suite must stay within
40 on a two-core machine). `scripts/test.sh` adds the linters' rows, read from VPSFLEET_TIMING.
"""

from __future__ import annotations

import json
import os
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

_SECONDS: dict[str, float] = defaultdict(float)
_COUNTS: dict[str, int] = defaultdict(int)
_STARTED = time.monotonic()


def part_of(nodeid: str) -> str:
    """`tests/fleet/test_ipam.py::test_x` -> `fleet`; a Molecule scenario -> `molecule <id>`."""
    path, _, rest = nodeid.partition("::")
    parts = Path(path).parts
    folder = parts[1] if len(parts) > 2 and parts[0] == "tests" else Path(path).stem
    if folder == "molecule" and "[" in rest:
        return f"molecule {rest[rest.index('[') + 1 : rest.rindex(']')]}"
    return folder


SERIAL_GROUP = "serial"
FIRST_SCENARIO = "[.:site]"
# The longest scenarios next, longest first (docs/test-suite.md's figures), so that the last
# ones handed out are short and the two workers end together; the others follow in name order.
LONG_SCENARIOS = (
    "[ansible/roles/backup_agent:default]",
    "[ansible/roles/backup_store:default]",
    "[ansible/roles/monitor:default]",
    "[ansible/roles/guest_base:default]",
    "[ansible/roles/hypervisor:default]",
    "[ansible/roles/connection_logs:default]",
)


def is_scenario(nodeid: str) -> bool:
    return "test_molecule_scenario[" in nodeid


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    # Stable sort: the site scenario, then the serial group, then the long scenarios longest
    # first, then the other scenarios.
    def rank(item: pytest.Item) -> tuple[int, int]:
        if item.nodeid.endswith(FIRST_SCENARIO):
            return (0, 0)
        if not is_scenario(item.nodeid):
            return (1, 0)
        long = [i for i, name in enumerate(LONG_SCENARIOS) if item.nodeid.endswith(name)]
        return (2, long[0]) if long else (3, 0)

    items.sort(key=rank)


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> Any:
    """Units of work: each Molecule scenario, and every other test together (`serial`). Written
    as a scheduler because xdist 3.8's `--dist loadgroup` renames items in a way pytest 9 ignores."""
    from xdist.scheduler import LoadScopeScheduling

    class SuiteScheduling(LoadScopeScheduling):  # type: ignore[misc]  # xdist is untyped
        def _split_scope(self, nodeid: str) -> str:
            return nodeid if is_scenario(nodeid) else SERIAL_GROUP

    return SuiteScheduling(config, log)


@pytest.fixture(autouse=True)
def _keep_the_umask() -> Iterator[None]:
    """The programs' mains set a strict umask (0077) and tests run them in-process: without this,
    every later test in the worker (e.g. one building .deb packages) inherits it."""
    umask = os.umask(0o022)
    os.umask(umask)
    yield
    os.umask(umask)


def pytest_runtest_logreport(report: pytest.TestReport) -> None:
    part = part_of(report.nodeid)
    _SECONDS[part] += report.duration
    if report.when == "call" or (report.when == "setup" and report.skipped):
        _COUNTS[part] += 1


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    rows = sorted(_SECONDS.items(), key=lambda item: -item[1])
    if not rows:
        return
    wall = time.monotonic() - _STARTED
    terminalreporter.section("time per part (setup + call + teardown)")
    for part, seconds in rows:
        terminalreporter.write_line(f"{part:<45} {_COUNTS[part]:>5} tests {seconds / 60:>7.1f} min")
    terminalreporter.write_line(f"{'pytest wall clock':<45} {'':>11} {wall / 60:>7.1f} min")
    target = os.environ.get("VPSFLEET_TIMING")
    if target and not hasattr(terminalreporter.config, "workerinput"):  # the controller only
        with open(target, "a", encoding="utf-8") as out:
            for part, seconds in rows:
                out.write(json.dumps({"part": f"pytest {part}", "seconds": round(seconds, 1)}) + "\n")
            out.write(json.dumps({"part": "pytest (wall clock)", "seconds": round(wall, 1)}) + "\n")
