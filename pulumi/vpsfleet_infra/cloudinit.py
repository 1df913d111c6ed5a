"""The guest's cloud-init seed: hostname, static IPv4 (M3), keys (M13) and access codes (M4).

Rendered as JSON, which is valid YAML and byte-for-byte deterministic: an unchanged fleet gives
an unchanged seed disk.
"""

from __future__ import annotations

import json
from typing import Any

from vpsfleet.fleet import Fleet
from vpsfleet.schema import Guest
from vpsfleet_infra.access import is_managed, password_hash, root_keys
from vpsfleet_infra.identity import mac_address

CUSTOMER_USER = "client"  # on a managed VPS the customer's own, unprivileged account (M13)


def _pool(fleet: Fleet, guest: Guest) -> tuple[list[str], str, int]:
    if guest.ipv4 is None:
        raise ValueError(f"guest {guest.name} has no IPv4: run `vpsfleet ipam allocate` first")
    found = fleet.pool_of(guest.ipv4)
    if found is None:
        raise ValueError(f"guest {guest.name}: {guest.ipv4} is in no datacenter pool")
    datacenter, pool = found
    resolvers = [str(r) for r in datacenter.dns_resolvers]
    return resolvers, str(pool.gateway), pool.network.prefixlen


def network_config(fleet: Fleet, guest: Guest) -> str:
    """Netplan v2: the fixed address, its pool's prefix and gateway, its datacenter's resolvers.
    The interface is matched by its MAC, whatever the image names it."""
    resolvers, gateway, prefix = _pool(fleet, guest)
    config = {
        "version": 2,
        "ethernets": {
            "public": {
                "match": {"macaddress": mac_address(guest.name)},
                "set-name": "eth0",
                "addresses": [f"{guest.ipv4}/{prefix}"],
                "routes": [{"to": "default", "via": gateway}],
                "nameservers": {"addresses": resolvers},
            }
        },
    }
    return json.dumps(config, indent=2) + "\n"


def meta_data(guest: Guest) -> str:
    return json.dumps({"instance-id": guest.name, "local-hostname": guest.name}, indent=2) + "\n"


def user_data(fleet: Fleet, guest: Guest, password: str) -> str:
    """Root's keys follow M13; the initial password (M4) is written as a SHA-512 crypt hash
    (on a managed VPS it must be changed at first login), and SSH never accepts passwords.
    The caller keeps the result a Pulumi secret all the same."""
    config: dict[str, Any] = {
        "hostname": guest.name,
        "preserve_hostname": False,
        "disable_root": False,
        "ssh_pwauth": False,
        "users": [{"name": "root", "ssh_authorized_keys": root_keys(fleet, guest)}],
    }
    if is_managed(fleet, guest):
        config["users"].append({"name": CUSTOMER_USER, "shell": "/bin/bash",
                                "lock_passwd": False})
        account = CUSTOMER_USER
    else:
        account = "root"
    hashed = password_hash(password, salt_seed=f"{password}/{guest.name}")
    # Expired, the password must be changed at first login; but an expired root password makes
    # sshd refuse every non-interactive login, keys included, and the hand-over logs in as root
    # with its key (docs/handover.md). So only the managed customer's account is expired here.
    config["chpasswd"] = {"expire": account == CUSTOMER_USER, "users": [
        {"name": account, "password": hashed, "type": "hash"}]}
    return "#cloud-config\n" + json.dumps(config, indent=2) + "\n"
