"""How long patch.yml takes to roll a fleet of N guests that all need an announced reboot.

Starts N systemd containers of the test image (no network, restart policy `always`, so that a
reboot really restarts them), gives each a due reboot notice, runs ansible/playbooks/patch.yml
with its default batches (1, 10 %, the rest) and prints the batch plan, the wall time, and when
each guest finished. Method and figures: docs/benchmarks-patching.md.

    .venv/bin/python benchmarks/patching_rollout.py [N]     (default 8, as the lab)
"""

from __future__ import annotations

import datetime as dt
import math
import sys
import tempfile
import time
from pathlib import Path

from tests.patching.guests import NOTICE, Guest, podman, run_patch, wait_booted
from vpsfleet import agent_build

IMAGE = "localhost/vpsfleet-debian12:latest"


def batch_plan(count: int) -> list[int]:
    """Ansible's batches for serial [1, "10%", "100%"]: a percentage rounds down, at least 1."""
    plan, left = [], count
    for size in (1, max(1, math.floor(count * 10 / 100)), count):
        if left <= 0:
            break
        plan.append(min(size, left))
        left -= plan[-1]
    return plan


def main(count: int) -> int:
    agent_build.build()  # the notice program as the role installs it, from vpsfleet_agents/
    names = [f"patching-bench-{i}" for i in range(1, count + 1)]
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "notice.json"
        config.write_text(
            '{"hostname": "bench", "customer_email": "c@customer.example.org", '
            '"operations_email": "ops@test.example.net", "mail_from": "ops@test.example.net", '
            '"window": "05:00", "notice_hours": 24, "templates": "/etc/vpsfleet/patching", '
            '"state_file": "/var/lib/vpsfleet/patching/notice.json"}', encoding="utf-8")
        try:
            start = time.monotonic()
            for name in names:
                podman("rm", "-f", name, check=False)
                podman("run", "-d", "--name", name, "--network", "none", "--restart=always",
                       IMAGE, "/sbin/init")
            guests = [Guest(n) for n in names]
            for guest in guests:
                wait_booted(guest)
                guest.sh("mkdir -p /etc/vpsfleet/patching /usr/local/sbin")
                podman("cp", str(NOTICE), f"{guest.name}:/usr/local/sbin/vpsfleet-patch-notice")
                podman("cp", str(config), f"{guest.name}:/etc/vpsfleet/patching/notice.json")
                guest.announce(dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1))
            print(f"guests: {count}, started in {time.monotonic() - start:.0f} s")
            print(f"batch plan (serial [1, '10%', '100%']): {batch_plan(count)}")
            before = {g.name: g.pid1_start() for g in guests}
            start = time.monotonic()
            run = run_patch(Path(tmp), names)
            wall = time.monotonic() - start
            rebooted = sum(g.pid1_start() != before[g.name] for g in guests)
            print(f"patch.yml: rc {run.rc}, {wall:.0f} s wall, {rebooted}/{count} rebooted")
            for host, result in sorted(run.results().items(), key=lambda i: i[1]["finished"]):
                print(f"  {result['finished']}  {host}  {result['result']}")
            return run.rc
        finally:
            for name in names:
                podman("rm", "-f", "-t", "2", name, check=False)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 8))
