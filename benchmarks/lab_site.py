"""Lab timings: `make lab` from nothing and when already up, then site.yml on N lab guests, first
run and second run (which must report no change). Prints figures; never asserts on time.

    .venv/bin/python benchmarks/lab_site.py                  # lab up twice, site on 2 and 8
    .venv/bin/python benchmarks/lab_site.py --no-lab --guests 2
    .venv/bin/python benchmarks/lab_site.py --no-lab --guests 2 --profile   # per-task top 10

The N guests are systemd containers of the test image in a network namespace and podman network
of the benchmark's own (192.0.2.0/24), configured as managed guests; they are removed at the end.
Method and results: docs/benchmarks-lab.md.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "pulumi"))

from vpsfleet_infra import nocloud  # noqa: E402

BIN = REPO / ".venv" / "bin"
NETNS = "vpsfleet-bench"
NETWORK = "vpsfleet-bench"
SUBNET, GATEWAY = "192.0.2.0/24", "192.0.2.1"
# ansible.posix.profile_tasks' summary lines: "Task name ------------ 1.23s".
TASK_TIME = re.compile(r"^(.+?) -{3,} (\d+\.\d+)s$", re.M)
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def sh(*args: str, ns: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
    command = ["nsenter", f"--net=/run/netns/{NETNS}", *args] if ns else list(args)
    return subprocess.run(command, check=check, capture_output=True, text=True)


def timed(label: str, *command: str) -> float:
    start = time.monotonic()
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    if result.returncode != 0:
        sys.exit(f"{label} failed:\n{result.stdout[-4000:]}\n{result.stderr[-2000:]}")
    print(f"{label:<40} {elapsed:7.1f} s", flush=True)
    return elapsed


def bench_lab() -> None:
    subprocess.run(["bash", "scripts/lab-down.sh"], cwd=REPO, check=True, capture_output=True)
    timed("make lab, from nothing", "bash", "scripts/lab.sh")
    timed("make lab, already up", "bash", "scripts/lab.sh")


def up(count: int, image: str, key: Path, work: Path) -> list[tuple[str, str]]:
    """The guests, each booted with a NoCloud seed that gives root the benchmark's key (cloud-init
    does it at first boot, as on a VPS: nothing is put into a container by hand)."""
    if not Path(f"/run/netns/{NETNS}").exists():
        sh("ip", "netns", "add", NETNS)
        sh("ip", "-n", NETNS, "link", "set", "lo", "up")
    if sh("podman", "network", "exists", NETWORK, check=False).returncode != 0:
        sh(
            "podman",
            "network",
            "create",
            "--disable-dns",
            "--label",
            "vpsfleet-bench=1",
            "--subnet",
            SUBNET,
            "--gateway",
            GATEWAY,
            NETWORK,
            ns=True,  # podman checks the subnet against the routes of its own namespace
        )
    guests = [(f"bench-{i:02d}", f"192.0.2.{10 + i}") for i in range(1, count + 1)]
    pub = key.with_suffix(".pub").read_text().strip()
    for name, ipv4 in guests:
        seed = work / "seeds" / name
        nocloud.write_seed(
            seed, nocloud.root_keys_user_data(name, [pub]), nocloud.meta_data(name), nocloud.NETWORK_DISABLED
        )
        sh(
            "podman",
            "run",
            "-d",
            "--name",
            name,
            "--hostname",
            name,
            "--label",
            "vpsfleet-bench=1",
            "--network",
            NETWORK,
            "--ip",
            ipv4,
            "--systemd=always",
            "--cap-add",
            "NET_ADMIN",
            "--volume",
            f"{seed}:/var/lib/cloud/seed/nocloud:ro",
            image,
            "/sbin/init",
            ns=True,
        )
    for _, ipv4 in guests:
        reachable(ipv4, key)
    return guests


def reachable(ipv4: str, key: Path, seconds: float = 180) -> None:
    """Waits until root's SSH opens with the key cloud-init installed, and cloud-init is done."""
    deadline = time.monotonic() + seconds
    while True:
        probe = sh(
            "ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no",
            "-o", "UserKnownHostsFile=/dev/null", "-o", "ConnectTimeout=5", f"root@{ipv4}",
            "cloud-init status --wait >/dev/null; true",
            ns=True, check=False,
        )  # fmt: skip
        if probe.returncode == 0:
            return
        if time.monotonic() > deadline:
            sys.exit(f"{ipv4}: SSH with the seeded key still refused after {seconds:.0f} s: {probe.stderr}")
        time.sleep(2)


def down() -> None:
    names = sh(
        "podman", "ps", "-a", "--filter", "label=vpsfleet-bench=1", "--format", "{{.Names}}"
    ).stdout.split()
    if names:
        sh("podman", "rm", "-f", "-t", "3", *names)
    sh("podman", "network", "rm", NETWORK, check=False)
    sh("ip", "netns", "delete", NETNS, check=False)


def inventory(guests: list[tuple[str, str]], key: Path) -> dict[str, object]:
    pub = key.with_suffix(".pub").read_text().strip()
    return {
        "all": {
            "vars": {
                "ansible_user": "root",
                "ansible_ssh_private_key_file": str(key),
                "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                "vpsfleet_provider": {
                    "name": "bench",
                    "operations_email": "ops@bench.example.net",
                    "relay": {"host": "relay.bench.example.net", "port": 587},
                    "operators": [{"name": "ops", "ssh_keys": [pub]}],
                },
                "vpsfleet_offer": {"name": "managed", "kind": "managed_vps", "root": "provider"},
                "vpsfleet_customer": {"id": "c-bench", "ssh_keys": [pub]},
                "vpsfleet_monitor_addresses": ["192.0.2.250"],
                "guest_base_mail_relay_address": "192.0.2.3",
                "guest_base_apt_update_cache": False,
            }
        },
        "managed": {"hosts": {name: {"ansible_host": ipv4} for name, ipv4 in guests}},
    }


def site(work: Path, inv: Path, run: int, profile: bool) -> tuple[float, int, int, list[str]]:
    ident = f"site-{run}"
    callbacks = (
        {"ANSIBLE_CALLBACKS_ENABLED": "ansible.posix.profile_tasks", "PROFILE_TASKS_TASK_OUTPUT_LIMIT": "10"}
        if profile
        else {}
    )
    start = time.monotonic()
    result = subprocess.run(
        [
            "nsenter",
            f"--net=/run/netns/{NETNS}",
            str(BIN / "ansible-runner"),
            "run",
            str(work),
            "--ident",
            ident,
            "-p",
            str(REPO / "ansible" / "playbooks" / "site.yml"),
            "--inventory",
            str(inv),
            # Role patching installs unattended-upgrades from an apt repository, which the lab
            # serves (role lab_apt_repo) and this benchmark's network does not: measured in the lab.
            "--cmdline",
            "--skip-tags patching",
            "-q",
        ],
        env={
            **os.environ,
            "ANSIBLE_CONFIG": str(REPO / "ansible" / "ansible.cfg"),
            "PATH": f"{BIN}:{os.environ['PATH']}",
            **callbacks,
        },
        capture_output=True,
        text=True,
    )
    elapsed = time.monotonic() - start
    stdout = re.sub(r"\x1b\[[0-9;]*m", "", (work / "artifacts" / ident / "stdout").read_text())
    recap = RECAP.findall(stdout)
    if result.returncode != 0 or not recap:
        sys.exit(f"site.yml failed:\n{stdout[-4000:]}")
    changed = sum(int(r[2]) for r in recap)
    failed = sum(int(r[4]) + int(r[3]) for r in recap)
    top = [f"{seconds:>7}s  {name.strip()}" for name, seconds in TASK_TIME.findall(stdout)][:10]
    return elapsed, changed, failed, top


def bench_site(count: int, image: str, profile: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="vpsfleet-bench-") as tmp:
        work = Path(tmp)
        key = work / "id_ed25519"
        sh("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key))
        down()
        try:
            guests = up(count, image, key, work)
            inv = work / "inventory.json"
            inv.write_text(json.dumps(inventory(guests, key)))
            for run in (1, 2):
                elapsed, changed, failed, top = site(work, inv, run, profile)
                print(
                    f"site.yml on {count} guests, run {run:<17} {elapsed:7.1f} s   "
                    f"changed={changed} failed={failed}",
                    flush=True,
                )
                for line in top:
                    print(f"    {line}", flush=True)
        finally:
            down()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--guests", type=int, nargs="*", default=[2, 8])
    parser.add_argument("--no-lab", action="store_true", help="skip the make lab timings")
    parser.add_argument(
        "--profile",
        action="store_true",
        help="print each site.yml run's 10 longest tasks (ansible.posix.profile_tasks)",
    )
    args = parser.parse_args()
    image = subprocess.run(
        ["bash", "scripts/build-test-image.sh"], cwd=REPO, check=True, capture_output=True, text=True
    ).stdout.split()[-1]
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}; image {image}")
    if not args.no_lab:
        bench_lab()
    for count in args.guests:
        bench_site(count, image, args.profile)


if __name__ == "__main__":
    main()
