"""Identity markers: a reused name never gets another identity's tree.

Each customer's folder and each guest's tree carries the identity it was made for
(`<root>/<customer>/.vpsfleet/identity`, `.../guests/<guest>`), written by root in root's
folders, so that the FTP accounts (which run as the tree's owner) cannot change it."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vpsfleet_agents.atomic import write_atomic
from vpsfleet_agents.store.journal import log, shown
from vpsfleet_agents.store.tree import META, TenantError, guest_folder, is_folder, meta_folder, store_folder


def read_marker(path: Path) -> str | None:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as err:
        return f"(unreadable marker: {err.strerror})"
    with os.fdopen(fd, encoding="utf-8", errors="replace") as handle:
        return handle.read(400).strip()


def write_marker(config: dict[str, Any], customer: str, identity: str, guest: str | None = None) -> None:
    """root's, 0644, in root's folders: the FTP accounts cannot change or remove it."""
    path = (
        store_folder(config, customer, "guests") / guest
        if guest
        else store_folder(config, customer) / "identity"
    )
    write_atomic(path, identity + "\n", 0o644)


def conflict(
    kind: str, item: dict[str, Any], identity: str | None, found: str | None, why: str
) -> dict[str, Any]:
    name = item["guest"]
    account = "FTP write account" if kind == "guest" else "read-only FTP account"
    remedy = (
        "Once the former owner's erasure is due (M11), run "
        f"`vpsfleet-backup-store erase-stale --guest {name}` on "
        "the store (logged), then converge again; or give the new one another name in the fleet."
        if kind == "guest" and found
        else "Erase or remove what is left of the former owner, then converge again."
    )
    return {
        "kind": kind,
        "name": name,
        "customer": item["customer"],
        "identity": identity,
        "found": found,
        "message": f"{kind} {name} ({identity}) gets no {account}: {why}. {remedy}",
    }


class _Check:
    """One run of `identities`: what it wrote, adopted and refused."""

    def __init__(self, config: dict[str, Any], dry_run: bool) -> None:
        self.config = config
        self.dry_run = dry_run
        self.written: list[str] = []
        self.adopted: list[str] = []
        self.conflicts: list[dict[str, Any]] = []
        self.markers: dict[tuple[str, str], str | None] = {}

    def record(self, customer: str, identity: str, guest: str | None, what: str, target: list[str]) -> None:
        target.append(what)
        if not self.dry_run:
            write_marker(self.config, customer, identity, guest)

    def guest(self, guest: dict[str, Any]) -> None:
        config = self.config
        name, customer, identity = guest["guest"], guest["customer"], guest.get("identity")
        found = read_marker(meta_folder(config, customer) / "guests" / name)
        self.markers[customer, name] = found
        folder = guest_folder(config, guest)
        if guest.get("state") == "terminated":
            if identity and found is None and is_folder(folder):
                self.record(customer, identity, name, f"guest {name}", self.adopted)
                self.markers[customer, name] = identity
            return
        if not identity:
            self.conflicts.append(
                conflict("guest", guest, None, found, "the configuration gives it no identity")
            )
            return
        if os.path.lexists(folder) and not is_folder(folder):
            self.conflicts.append(conflict("guest", guest, identity, found, f"{folder} is not a folder"))
        elif is_folder(folder) and found is not None and found != identity:
            why = f"its tree {folder} still holds the sets of {found}"
            self.conflicts.append(conflict("guest", guest, identity, found, why))
        elif found != identity and is_folder(Path(config["root"], customer)):
            target = self.adopted if is_folder(folder) else self.written
            self.record(customer, identity, name, f"guest {name}", target)
            self.markers[customer, name] = identity

    def customer(self, customer: dict[str, Any], entry: dict[str, Any]) -> None:
        cid, identity = customer["id"], customer.get("identity")
        folder = Path(self.config["root"], cid)
        if not identity:
            self.conflicts.append(
                conflict("customer", entry, None, None, "the configuration gives it no identity")
            )
            return
        if not is_folder(folder):
            if os.path.lexists(folder):
                self.conflicts.append(
                    conflict("customer", entry, identity, None, f"{folder} is not a folder")
                )
            return  # made by the role, marked at its next run
        found = read_marker(meta_folder(self.config, cid) / "identity")
        if found == identity:
            return
        if found is None:
            self.record(cid, identity, None, f"customer {cid}", self.adopted)
            return
        own = {g["guest"]: g.get("identity") for g in self.config["guests"] if g["customer"] == cid}
        foreign = [
            n
            for n in sorted(os.listdir(folder))
            if n != META and is_folder(folder / n) and (n not in own or self.markers.get((cid, n)) != own[n])
        ]
        if foreign:
            why = f"its folder {folder} still holds trees of {found}: " + ", ".join(map(shown, foreign))
            self.conflicts.append(conflict("customer", entry, identity, found, why))
        else:
            what = f"customer {cid} (folder of {found}, no tree of it left)"
            self.record(cid, identity, None, what, self.adopted)


def identities(config: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    """Checks and writes the identity markers. A tree that exists with another identity's
    marker is a reused name: that account is refused (`conflicts`; the role leaves it out and
    fails it), the tree is kept. A tree without a marker (made before markers existed) is
    adopted. A customer's marker is rewritten when its folder holds no tree of another identity
    any more."""
    check = _Check(config, dry_run)
    for guest in config["guests"]:
        try:
            check.guest(guest)
        except (OSError, TenantError) as err:
            why = f"its identity cannot be checked: {err}"
            check.conflicts.append(conflict("guest", guest, guest.get("identity"), None, why))
    for customer in config["customers"]:
        entry = {"guest": customer["id"], "customer": customer["id"]}
        try:
            check.customer(customer, entry)
        except (OSError, TenantError) as err:
            why = f"its identity cannot be checked: {err}"
            check.conflicts.append(conflict("customer", entry, customer.get("identity"), None, why))
    for item in check.conflicts:
        log(f"identity: {item['message']}")
    for what in check.adopted:
        log(f"identity: {'would adopt' if dry_run else 'adopted'} the existing tree of {what}")
    return {
        "changed": bool(check.written or check.adopted),
        "written": check.written,
        "adopted": check.adopted,
        "conflicts": check.conflicts,
        "problems": [],
    }
