"""Runs a playbook again on the running lab (`make lab`) and says where the run's CPU went: wall
time, the controller's CPU (ansible-playbook, its workers and their ssh clients), the lab
containers' CPU (their cgroups: the guests' sshd, sudo-less sessions and module runs), the load
before and after, then the run's profile (benchmarks/runner_profile.py). On this 2-core machine
the guests share the controller's CPU, so the sum of both bounds the run from below.
Prints figures; asserts nothing. Method and results: docs/benchmarks-lab.md (issue 15 part 3).

    .venv/bin/python benchmarks/lab_rerun.py                      # lab.yml once
    .venv/bin/python benchmarks/lab_rerun.py --runs 3 --top 5
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run as a file: benchmarks/ is a package of the checkout

from benchmarks.runner_profile import profile, read_events, report  # noqa: E402

LAB_DIR = Path("/var/lib/vpsfleet-lab")
NETNS = "vpsfleet-lab"
# podman's containers under the cgroupfs manager: one parent for all (cgroup v1, then v2).
CGROUP_V1 = Path("/sys/fs/cgroup/cpuacct/libpod_parent/cpuacct.usage")
CGROUP_V2 = Path("/sys/fs/cgroup/libpod_parent/cpu.stat")


def containers_cpu_seconds(v1: Path = CGROUP_V1, v2: Path = CGROUP_V2) -> float | None:
    """CPU the containers used since they started, in seconds; None where neither file is."""
    if v1.is_file():
        return int(v1.read_text().split()[0]) / 1e9  # nanoseconds
    if v2.is_file():
        for line in v2.read_text().splitlines():
            key, _, value = line.partition(" ")
            if key == "usage_usec":
                return int(value) / 1e6
    return None


@dataclass(frozen=True)
class RunCost:
    wall: float
    controller: float  # user + system seconds of the run's processes
    containers: float | None
    load_before: float
    load_after: float
    returncode: int

    def line(self) -> str:
        guests = "not readable" if self.containers is None else f"{self.containers:.1f} s"
        total = "" if self.containers is None else (
            f"; together {self.controller + self.containers:.1f} CPU-s, "
            f"{(self.controller + self.containers) / self.wall:.2f} cores busy on average"
        )
        return (
            f"wall {self.wall:.1f} s, rc {self.returncode}; CPU: controller {self.controller:.1f} s, "
            f"containers {guests}{total}; load {self.load_before:.2f} -> {self.load_after:.2f}"
        )


def measured(command: list[str], log: Path) -> RunCost:
    """Runs the command, its output to the log, and measures it."""
    before_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    before_guests = containers_cpu_seconds()
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    # ansible-runner starts the ansible-playbook it finds on PATH: this virtualenv's.
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    with log.open("w") as out:
        returncode = subprocess.run(
            command, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    wall = time.monotonic() - start
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    after_guests = containers_cpu_seconds()
    controller = (after_children.ru_utime - before_children.ru_utime) + (
        after_children.ru_stime - before_children.ru_stime
    )
    guests = None if before_guests is None or after_guests is None else after_guests - before_guests
    return RunCost(wall, controller, guests, load_before, os.getloadavg()[0], returncode)


def newest_artifacts(lab_dir: Path) -> Path:
    return max((lab_dir / "runner" / "artifacts").iterdir(), key=lambda p: p.stat().st_mtime)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--playbook", default="lab.yml", help="under ansible/playbooks (default lab.yml)")
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--top", type=int, default=10, help="longest tasks listed per run")
    parser.add_argument("--lab-dir", type=Path, default=LAB_DIR)
    parser.add_argument("--log-dir", type=Path, default=Path("/tmp"), help="each run's Ansible output")
    args = parser.parse_args(argv)
    if not (args.lab_dir / "runner").is_dir():
        sys.exit(f"no lab in {args.lab_dir}: run make lab first")
    command = [
        "nsenter", f"--net=/run/netns/{NETNS}", sys.executable, "-m", "vpsfleet.lab", "run-playbook",
        str(REPO), str(args.lab_dir), args.playbook,
    ]
    print(f"{os.cpu_count()} cores; {args.playbook} on the running lab, {args.runs} run(s)")
    for run in range(1, args.runs + 1):
        log = args.log_dir / f"lab-rerun-{run}.log"
        cost = measured(command, log)
        print(f"run {run}: {cost.line()} (output {log})", flush=True)
        print("\n".join("  " + line for line in report(profile(read_events(newest_artifacts(args.lab_dir))),
                                                          args.top)), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
