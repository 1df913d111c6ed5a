"""NoCloud seeds for machines cloud-init configures outside libvirt. Today only `lab-seeds` writes
them, for the lab's and the site scenario's containers; `provider_user_data` is the seed of a
provider machine (store, monitor, hypervisor, edge router) or of a dedicated server until its
delivery, whose installation is outside this repository.

A guest's seed is the one the Pulumi program writes on its seed disk (`cloudinit.user_data`),
so the lab boots its containers from the program's own code: cloud-init in the container reads
the seed folder (`/var/lib/cloud/seed/nocloud`) exactly as a VPS reads its seed disk.

    python -m vpsfleet_infra.nocloud lab-seeds FLEET_FILE OUT_DIR --operator-key PUB \
        --handover-key PUB --customer-key PUB --password-seed FILE [--provider-machine NAME]...

The lab has no private key for the fleet file's example keys, so it renders the seeds from a
copy of the fleet whose operators, hand-over and customers hold the lab's throwaway keys
(`with_lab_keys`): the same substitution its inventory makes (scripts/lab.sh).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from vpsfleet.fleet import Fleet
from vpsfleet.loader import FleetInvalid, load_fleet
from vpsfleet_infra import cloudinit
from vpsfleet_infra.access import initial_password, operator_keys

# The lab's containers get their address from their podman network (at the fleet's address);
# the program's netplan, matched by the VM's MAC, is checked on a real VM (tests/pulumi).
NETWORK_DISABLED = json.dumps({"network": {"config": "disabled"}}) + "\n"


def provider_user_data(fleet: Fleet, hostname: str) -> str:
    """A machine the provider administers: the operators' keys on root, no password at all.
    Dedicated servers get this until their delivery (M12), when handover.yml gives root to the
    customer's keys and removes every provider key (M13)."""
    return root_keys_user_data(hostname, operator_keys(fleet))


def root_keys_user_data(hostname: str, keys: Sequence[str]) -> str:
    """The seed of a machine whose root opens with `keys` only (no password at all)."""
    config = {
        "hostname": hostname,
        "preserve_hostname": False,
        "disable_root": False,
        "ssh_pwauth": False,
        "users": [{"name": "root", "ssh_authorized_keys": list(keys)}],
    }
    return "#cloud-config\n" + json.dumps(config, indent=2) + "\n"


def meta_data(hostname: str) -> str:
    return json.dumps({"instance-id": hostname, "local-hostname": hostname}, indent=2) + "\n"


def write_seed(directory: Path, user_data: str, meta: str, network: str | None = None) -> None:
    """A NoCloud seed folder; the user data may hold a password hash, so only root reads it."""
    directory.mkdir(parents=True, exist_ok=True)
    directory.chmod(0o700)
    files = {"user-data": user_data, "meta-data": meta}
    if network is not None:
        files["network-config"] = network
    for name, text in files.items():
        path = directory / name
        path.touch(mode=0o600)
        path.write_text(text)


def with_lab_keys(fleet: Fleet, *, operator: str, handover: str, customer: str) -> Fleet:
    """The fleet with its keys replaced by the lab's throwaway ones (one per role)."""
    provider = fleet.provider.model_copy(update={
        "operators": [o.model_copy(update={"ssh_keys": [operator]}) for o in fleet.provider.operators],
        "handover_keys": [handover],
    })
    customers = [c.model_copy(update={"ssh_keys": [customer]}) for c in fleet.customers]
    return dataclasses.replace(fleet, provider=provider, customers=customers)


def lab_seeds(fleet: Fleet, out: Path, password_seed: str, provider_machines: Sequence[str]) -> list[str]:
    """One seed folder per live guest with an address, dedicated server with an address, store,
    monitor, hypervisor with an address, edge router and extra provider machine (the lab's mail
    sink). Returns the names written."""
    written: list[str] = []
    for guest in fleet.live_guests():
        if guest.ipv4 is None:
            continue
        password = initial_password(password_seed, fleet.environment, guest.name)
        write_seed(out / guest.name, cloudinit.user_data(fleet, guest, password),
                   cloudinit.meta_data(guest), NETWORK_DISABLED)
        written.append(guest.name)
    names = [s.name for s in fleet.dedicated_servers if s.ipv4 is not None]
    names += [s.name for s in fleet.backup_stores] + [m.name for m in fleet.monitors]
    names += [h.name for h in fleet.hosts if h.ipv4 is not None]  # labhv1 is the lab's machine
    names += [dc.edge_router.name for dc in fleet.datacenters if dc.edge_router is not None]
    for name in [*names, *provider_machines]:
        write_seed(out / name, provider_user_data(fleet, name), meta_data(name), NETWORK_DISABLED)
        written.append(name)
    return written


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vpsfleet_infra.nocloud")
    sub = parser.add_subparsers(dest="command", required=True)
    lab = sub.add_parser("lab-seeds", help="the lab's seed folders, from the program's own code")
    lab.add_argument("fleet_file", type=Path)
    lab.add_argument("out", type=Path)
    for role in ("operator", "handover", "customer"):
        lab.add_argument(f"--{role}-key", type=Path, required=True, help="a public key file")
    lab.add_argument("--password-seed", type=Path, required=True, help="a file holding the seed")
    lab.add_argument("--provider-machine", action="append", default=[],
                     help="an extra machine of the provider, not in the fleet (the lab's mail sink)")
    args = parser.parse_args(argv)
    try:
        fleet = load_fleet(args.fleet_file)
    except FleetInvalid as error:
        print(error, file=sys.stderr)
        return 1
    keys = {role: getattr(args, f"{role}_key").read_text().strip()
            for role in ("operator", "handover", "customer")}
    fleet = with_lab_keys(fleet, **keys)
    written = lab_seeds(fleet, args.out, args.password_seed.read_text().strip(), args.provider_machine)
    print(f"seeds for {len(written)} machines in {args.out}: {' '.join(written)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
