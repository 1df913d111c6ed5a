"""The Python steps of `make lab` (scripts/lab.sh keeps the steps a reader follows).

    python -m vpsfleet.lab plan SINK_IPV4 [--env lab]        # the lab plan, as shell assignments
    python -m vpsfleet.lab run-playbook ROOT LAB_DIR PLAYBOOK [LIMIT]   # through ansible-runner
    python -m vpsfleet.lab verify-summary SUMMARY_JSON        # one line per verified guest
    python -m vpsfleet.lab start-container LAB_DIR IMAGE NAME HOSTNAME POOL IPV4 [--privileged]
        [--volume SRC:DST:ro]...                              # prints "new"

The plan is what lab.sh sources: the address pools in use (`NAME:NETWORK:GATEWAY`), then one
`NAME:IPV4:POOL:WHO:KIND` word per machine, WHO being who is root (`customer` or `provider`) and
KIND the guest's offer, `dedicated` (a dedicated server, among the guests), `backup-store`,
`monitor`, `hypervisor` (a host the fleet gives an address) or `edge-router`; then the base
images those hypervisors name, the mail sink's pool and the relay's name. Every machine's pool
comes from the fleet file, so the lab never declares an address.
"""

from __future__ import annotations

import argparse
import ipaddress
import json
import shlex
import subprocess
import sys
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpsfleet.fleet import Fleet
from vpsfleet.kernel_clock import seal_time_warp
from vpsfleet.schema import Pool


class LabError(Exception):
    """The fleet file cannot be laid out as a lab (said to the operator, exit 1)."""


@dataclass(frozen=True)
class Machine:
    name: str
    ipv4: ipaddress.IPv4Address
    pool: str
    who: str  # who is root: customer or provider
    kind: str  # the guest's offer, backup-store, monitor, hypervisor or edge-router

    def word(self) -> str:
        return f"{self.name}:{self.ipv4}:{self.pool}:{self.who}:{self.kind}"


@dataclass(frozen=True)
class LabPlan:
    pools: tuple[Pool, ...]  # in order of first use: the sink's, the guests', stores', monitors'
    guests: tuple[Machine, ...]
    stores: tuple[Machine, ...]
    monitors: tuple[Machine, ...]
    hypervisors: tuple[Machine, ...]  # the hosts the site reaches (group hypervisors_reachable)
    edge_routers: tuple[Machine, ...]
    images: tuple[str, ...]  # the image names those hypervisors hold, each once
    sink_pool: str
    relay_host: str

    def shell(self) -> str:
        """Bash assignments (arrays and scalars), each value quoted."""

        def array(name: str, words: Iterable[str]) -> str:
            return f"{name}=(" + " ".join(shlex.quote(w) for w in words) + ")"

        return (
            "\n".join(
                [
                    array("pools", (f"{p.name}:{p.network}:{p.gateway}" for p in self.pools)),
                    array("guests", (m.word() for m in self.guests)),
                    array("stores", (m.word() for m in self.stores)),
                    array("monitors", (m.word() for m in self.monitors)),
                    array("hypervisors", (m.word() for m in self.hypervisors)),
                    array("edge_routers", (m.word() for m in self.edge_routers)),
                    array("images", self.images),
                    f"sink_pool={self.sink_pool}",
                    f"relay_host={shlex.quote(self.relay_host)}",
                ]
            )
            + "\n"
        )


def plan(fleet: Fleet, sink: ipaddress.IPv4Address) -> LabPlan:
    """The lab's pools and machines: every live guest and dedicated server with an address, every
    backup store, monitor, hypervisor with an address and edge router, and the mail sink, which
    must be a reserved address of a pool (the relay's)."""
    found = fleet.pool_of(sink)
    if found is None or sink not in found[1].reserved:
        raise LabError(f"the mail sink {sink} must be a reserved address of a lab pool (fleet.yml)")
    pools: dict[str, Pool] = {found[1].name: found[1]}

    def pool_of(name: str, address: ipaddress.IPv4Address, kind: str) -> str:
        where = fleet.pool_of(address)
        if where is None:
            raise LabError(f"the {kind} {name} ({address}) is outside every lab pool")
        pools.setdefault(where[1].name, where[1])
        return where[1].name

    guests: list[Machine] = []
    for guest in fleet.live_guests():
        if guest.ipv4 is None:
            continue
        offer = fleet.offer(guest.offer)
        if offer is None:
            raise LabError(f"the guest {guest.name} has an unknown offer {guest.offer}")
        pool = pool_of(guest.name, guest.ipv4, "guest")
        guests.append(Machine(guest.name, guest.ipv4, pool, offer.root, offer.name))
    # A dedicated server is the provider's to configure until its delivery, the customer's after.
    for server in fleet.dedicated_servers:
        if server.ipv4 is None:
            continue
        who = "customer" if server.delivered_on is not None else "provider"
        pool = pool_of(server.name, server.ipv4, "dedicated server")
        guests.append(Machine(server.name, server.ipv4, pool, who, "dedicated"))

    def provider_machines(
        machines: Iterable[tuple[str, ipaddress.IPv4Address]], kind: str
    ) -> tuple[Machine, ...]:
        """The provider's own machines (stores, monitors, hypervisors, edge routers)."""
        return tuple(
            Machine(name, address, pool_of(name, address, kind), "provider", kind)
            for name, address in machines
        )

    stores = provider_machines(((s.name, s.address) for s in fleet.backup_stores), "backup-store")
    monitors = provider_machines(((m.name, m.address) for m in fleet.monitors), "monitor")
    # A host without an address is the machine the lab runs on (labhv1): no container.
    hosts = [(h.name, h.ipv4) for h in fleet.hosts if h.ipv4 is not None]
    hypervisors = provider_machines(hosts, "hypervisor")
    routers = [dc.edge_router for dc in fleet.datacenters if dc.edge_router is not None]
    edge_routers = provider_machines(((r.name, r.address) for r in routers), "edge-router")
    images = tuple(dict.fromkeys(name for h in fleet.hosts if h.ipv4 is not None for name in h.images))
    return LabPlan(
        pools=tuple(pools.values()),
        guests=tuple(guests),
        stores=stores,
        monitors=monitors,
        hypervisors=hypervisors,
        edge_routers=edge_routers,
        images=images,
        sink_pool=found[1].name,
        relay_host=fleet.provider.relay.host,
    )


# A privileged container's /sys is writable, where systemd-networkd would wait for a udev the
# container lacks and leave every link pending: read-only, systemd knows it runs in a container
# (as the hypervisor scenario's prepare.yml does after boot). Done before systemd starts.
PRIVILEGED_INIT = ["/bin/sh", "-c", "mount -o remount,ro /sys && exec /sbin/init"]


def container_command(
    lab_dir: Path,
    image: str,
    name: str,
    hostname: str,
    pool: str,
    ipv4: str,
    privileged: bool = False,
    volumes: Sequence[str] = (),
) -> list[str]:
    """`podman run` of one machine of the lab: systemd, at its fixed address on its pool's
    network, with its seed folder where cloud-init reads a NoCloud seed (what a VPS's seed disk
    is: cloud-init reads it at first boot). Run inside the lab's namespace. `privileged`: a
    hypervisor (libvirtd, br_netfilter's sysctls) or an edge router (IPv4 forwarding), whose
    /proc/sys an ordinary container has read-only. `volumes`: extra podman --volume values."""
    rights = ["--privileged"] if privileged else ["--cap-add", "NET_ADMIN", "--cap-add", "NET_RAW"]
    extra = [arg for volume in volumes for arg in ("--volume", volume)]
    return [
        "podman",
        "run",
        "-d",
        "--name",
        name,
        "--hostname",
        hostname,
        "--label",
        "vpsfleet-lab=1",
        "--network",
        f"vpsfleet-lab-{pool}",
        "--ip",
        ipv4,
        "--systemd=always",
        *rights,
        "--volume",
        f"{lab_dir}/seeds/{hostname}:/var/lib/cloud/seed/nocloud:ro",
        *extra,
        image,
        *(PRIVILEGED_INIT if privileged else ["/sbin/init"]),
    ]


def start_container(
    lab_dir: Path,
    image: str,
    name: str,
    hostname: str,
    pool: str,
    ipv4: str,
    privileged: bool = False,
    volumes: Sequence[str] = (),
) -> str:
    """Creates the container when missing ("new"), starts it when stopped ("started"), else
    leaves it ("")."""

    def podman(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(["podman", *args], capture_output=True, text=True, check=False)

    def must(done: subprocess.CompletedProcess[str]) -> None:
        if done.returncode != 0:
            raise LabError(f"{' '.join(done.args)}: {done.stderr.strip()}")

    if privileged:
        # Its systemd-timedated could otherwise warp this machine's clock (vpsfleet.kernel_clock).
        seal_time_warp()
    if podman("container", "exists", name).returncode != 0:
        must(
            subprocess.run(
                container_command(lab_dir, image, name, hostname, pool, ipv4, privileged, volumes),
                capture_output=True,
                text=True,
                check=False,
            )
        )
        return "new"
    state = podman("container", "inspect", "-f", "{{.State.Running}}", name)
    must(state)
    if state.stdout.strip() != "true":
        must(podman("start", name))
        return "started"
    return ""


def runner_settings(root: Path, lab_dir: Path, playbook: str, limit: str) -> dict[str, Any]:
    """ansible-runner's arguments for one playbook of the lab (inventory: the fleet's plugin
    file and lab.sh's additions)."""
    return {
        "private_data_dir": f"{lab_dir}/runner",
        "playbook": f"{root}/ansible/playbooks/{playbook}",
        "inventory": [f"{root}/inventories/lab/vpsfleet.yml", f"{lab_dir}/lab-hosts.yml"],
        "limit": limit or None,
        "envvars": {
            "ANSIBLE_CONFIG": f"{root}/ansible/ansible.cfg",
            "ANSIBLE_DISPLAY_SKIPPED_HOSTS": "false",
            "ANSIBLE_DISPLAY_OK_HOSTS": "false",
            "ANSIBLE_FORCE_COLOR": "false",
            # SSH masters of the lab's own, gone with it (make lab-down): a master left from
            # containers that were since replaced at the same address breaks the next run.
            "ANSIBLE_SSH_CONTROL_PATH_DIR": f"{lab_dir}/ssh/cp",
            "ANSIBLE_SSH_RETRIES": "3",
        },
        "rotate_artifacts": 10,
        "quiet": False,
    }


def run_playbook(
    root: Path,
    lab_dir: Path,
    playbook: str,
    limit: str = "",
    quiet: bool = False,
    fleet_inventory: Path | None = None,
    tags: str = "",
) -> int:
    """Runs the playbook through ansible-runner (the interface AWX/AAP use); 0 when it passed.
    `quiet`: Ansible's progress only in the artifacts. `fleet_inventory`: another fleet's inventory
    source instead of the lab's (the pipeline demo's merge), with lab.sh's additions."""
    import ansible_runner  # only here: the plan and the summary need no Ansible

    settings = {**runner_settings(root, lab_dir, playbook, limit), "quiet": quiet}
    if fleet_inventory is not None:
        settings["inventory"] = [str(fleet_inventory), f"{lab_dir}/lab-hosts.yml"]
    if tags:
        settings["tags"] = tags
    result = ansible_runner.run(**settings)
    print(f"ansible-runner: {result.status}, artifacts in {result.config.artifact_dir}")
    return 0 if result.rc == 0 else 1


def verify_summary(summary: Mapping[str, Any]) -> list[str]:
    """One line per guest of playbooks/verify-backups.yml's summary.json."""
    lines = []
    for r in summary["results"]:
        what = ", ".join(c["file"] for c in r.get("checked", []))
        verdict = "skipped (no set yet)" if r["skipped"] else ("verified" if r["ok"] else "FAILED")
        # a guest with no new set for longer than the policy allows (M24)
        nights = r.get("nights_without_set")
        stale = f", STOPPED PUBLISHING, no new set for {nights} nights" if r.get("stale") else ""
        lines.append(f"  {r['guest']}: set {r.get('set') or '-'} {verdict} ({what}){stale}")
    return lines


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vpsfleet.lab", description="the Python steps of make lab"
    )
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("plan", help="the lab plan from the fleet file, as bash assignments")
    p.add_argument("sink", type=ipaddress.IPv4Address, help="the mail sink's IPv4")
    p.add_argument("--env", default="lab", help="environment or fleet file (default: lab)")
    p = commands.add_parser("run-playbook", help="a playbook through ansible-runner")
    p.add_argument("root", type=Path)
    p.add_argument("lab_dir", type=Path)
    p.add_argument("playbook")
    p.add_argument("limit", nargs="?", default="")
    p = commands.add_parser("verify-summary", help="the verification's summary.json, one line per guest")
    p.add_argument("summary", type=Path)
    p = commands.add_parser("start-container", help="one machine's container, when missing or stopped")
    for name in ("lab_dir", "image", "name", "hostname", "pool", "ipv4"):
        p.add_argument(name, type=Path if name == "lab_dir" else str)
    p.add_argument("--privileged", action="store_true", help="a hypervisor's or an edge router's")
    p.add_argument("--volume", action="append", default=[], help="an extra podman --volume value")
    args = parser.parse_args(argv)

    if args.command == "plan":
        from vpsfleet.environments import fleet_path
        from vpsfleet.loader import load_fleet

        try:
            print(plan(load_fleet(fleet_path(args.env)), args.sink).shell(), end="")
        except LabError as error:
            print(error, file=sys.stderr)
            return 1
        return 0
    if args.command == "run-playbook":
        return run_playbook(args.root, args.lab_dir, args.playbook, args.limit)
    if args.command == "start-container":
        try:
            done = start_container(
                args.lab_dir, args.image, args.name, args.hostname, args.pool, args.ipv4,
                args.privileged, args.volume,
            )
        except LabError as error:
            print(error, file=sys.stderr)
            return 1
        if done == "new":
            print(done)
        return 0
    with args.summary.open(encoding="utf-8") as f:
        summary = json.load(f)
    for line in verify_summary(summary):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
