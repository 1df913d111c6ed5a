"""benchmarks/lab_rerun.py: the containers' CPU read from their cgroup (v1 or v2), and a run's
cost said in one line; the run itself needs the lab (docs/benchmarks-lab.md)."""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks.lab_rerun import RunCost, containers_cpu_seconds, measured


def test_reads_cgroup_v1_nanoseconds_then_v2_microseconds_else_nothing(tmp_path: Path) -> None:
    v1, v2 = tmp_path / "cpuacct.usage", tmp_path / "cpu.stat"
    assert containers_cpu_seconds(v1, v2) is None
    v2.write_text("usage_usec 2500000\nuser_usec 2000000\nsystem_usec 500000\n")
    assert containers_cpu_seconds(v1, v2) == 2.5
    v1.write_text("176637000000\n")
    assert containers_cpu_seconds(v1, v2) == 176.637


def test_one_line_says_both_sides_and_how_busy_the_cores_were() -> None:
    cost = RunCost(wall=100.0, controller=60.0, containers=140.0, load_before=1.0, load_after=3.5,
                   returncode=0)
    assert cost.line() == (
        "wall 100.0 s, rc 0; CPU: controller 60.0 s, containers 140.0 s; together 200.0 CPU-s, "
        "2.00 cores busy on average; load 1.00 -> 3.50"
    )
    unknown = RunCost(wall=10.0, controller=1.0, containers=None, load_before=0.0, load_after=0.0,
                      returncode=2)
    assert unknown.line().startswith("wall 10.0 s, rc 2; CPU: controller 1.0 s, containers not readable;")


def test_measures_the_cpu_a_command_spends(tmp_path: Path) -> None:
    """A child that burns CPU for a moment: its CPU counts on the controller's side."""
    log = tmp_path / "out.log"
    cost = measured([sys.executable, "-c", "print(sum(i * i for i in range(3_000_000)))"], log)
    assert cost.returncode == 0
    assert log.read_text().strip() == str(sum(i * i for i in range(3_000_000)))
    assert cost.controller > 0.05
    assert cost.wall >= cost.controller * 0.5
