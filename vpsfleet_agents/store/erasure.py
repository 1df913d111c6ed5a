"""Erasure of the trees of terminated guests on their termination date (M11), of the trees no
configured guest owns any more, and of the tree a reused name still holds: each logged to the
journal and to an append-only log."""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
import socket
from pathlib import Path
from typing import Any

from vpsfleet_agents.store.accounts import passwd_users, remove_account
from vpsfleet_agents.store.config import NAME, Refused, erase_due
from vpsfleet_agents.store.identities import read_marker
from vpsfleet_agents.store.journal import log, problem, shown
from vpsfleet_agents.store.tree import (
    META,
    TenantError,
    customer_checked,
    guest_folder,
    is_folder,
    meta_folder,
    remove_tree,
    tree_size,
)

ERASURE_LOG = "/var/log/vpsfleet-backup-store/erasure.log"
UNKNOWN = "not in the store's configuration"


def append_erasure_log(path: str, entry: dict[str, Any]) -> None:
    os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        handle.write(json.dumps(entry, sort_keys=True) + "\n")
        handle.flush()
        os.fsync(handle.fileno())


def erase_tree(
    config: dict[str, Any],
    customer: str,
    guest: str,
    why: str,
    by: str,
    dry_run: bool,
    terminated_on: str | None = None,
) -> dict[str, Any] | None:
    """Erases one guest's tree, its quarantined sets, its identity marker and its account;
    logs it to the journal and the erasure log. None when there was nothing to erase."""
    folder = customer_checked(config, customer) / guest
    quarantine = meta_folder(config, customer) / "quarantine" / guest
    marker = meta_folder(config, customer) / "guests" / guest
    present = os.path.lexists(folder)
    held = os.path.lexists(quarantine)
    account = guest in passwd_users(config.get("passwd_file"))
    if not present and not held and not account:
        if not dry_run and os.path.lexists(marker):
            remove_tree(marker)
        return None
    size, files = tree_size(folder)
    kept, kept_files = tree_size(quarantine)
    entry = {
        "time": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        "by": by,
        "store": config.get("store", socket.gethostname()),
        "guest": guest,
        "customer": customer,
        "terminated_on": terminated_on,
        "reason": why,
        "path": str(folder),
        "bytes": size + kept,
        "files": files + kept_files,
        "folder_removed": present,
        "account_removed": account,
    }
    if not dry_run:
        for path in (folder, quarantine, marker):
            remove_tree(path)
        if account:
            remove_account(config.get("passwd_file"), guest)
        append_erasure_log(config.get("erasure_log", ERASURE_LOG), entry)
        log(
            f"erased {guest} of {customer} ({why}): {folder}, {size + kept} bytes in {files + kept_files} "
            f"files, by {by}"
        )
    return entry


def drop_empty_customer(config: dict[str, Any], customer: str, dry_run: bool) -> None:
    """A customer with no live guest left: its folder goes once no tree is left in it (the
    store's records in it with it)."""
    folder = Path(config["root"], customer)
    if dry_run or not is_folder(folder):
        return
    if any(name != META for name in os.listdir(folder)):
        return
    meta = folder / META
    if is_folder(meta / "quarantine") and os.listdir(meta / "quarantine"):
        return
    remove_tree(meta)
    folder.rmdir()


def configured_trees(config: dict[str, Any]) -> dict[str, set[str]]:
    """customer -> the guest names the configuration keeps a tree for."""
    trees: dict[str, set[str]] = {c["id"]: set() for c in config["customers"]}
    for guest in config["guests"]:
        trees.setdefault(guest["customer"], set()).add(guest["guest"])
    return trees


def unknown_trees(
    config: dict[str, Any], problems: list[dict[str, Any]]
) -> tuple[list[tuple[str, str]], int]:
    """The guest trees (customer, guest) of the store that no configured guest owns, and how
    many guest trees there are in all; reports what is neither (links, files) as garbage."""
    root = Path(config["root"])
    known = configured_trees(config)
    unknown: list[tuple[str, str]] = []
    total = 0
    try:
        customers = sorted(os.listdir(root))
    except FileNotFoundError:
        return [], 0
    for customer in customers:
        path = root / customer
        if customer == "lost+found" and is_folder(path):
            continue  # the root of its own file system
        if not is_folder(path) or not NAME.fullmatch(customer):
            text = f"{path} is not a customer's folder: left alone"
            problems.append(problem("garbage", None, text, shown(customer)))
            continue
        try:
            entries = sorted(os.listdir(path))
        except OSError as err:
            problems.append(problem("error", None, f"{path} cannot be read: {err}", customer))
            continue
        quarantined: set[str] = set()
        if is_folder(path / META / "quarantine"):
            quarantined = {n for n in os.listdir(path / META / "quarantine") if NAME.fullmatch(n)}
        for name in entries:
            if name == META:
                continue
            if not is_folder(path / name) or not NAME.fullmatch(name):
                text = f"{path / shown(name)} is not a guest's tree: left alone"
                problems.append(problem("garbage", None, text, customer, [shown(name)]))
                continue
            total += 1
            if name not in known.get(customer, set()):
                unknown.append((customer, name))
        # Quarantined sets of a guest whose tree is gone count as one more tree.
        held = [n for n in sorted(quarantined) if not is_folder(path / n)]
        total += len(held)
        unknown += [(customer, n) for n in held if n not in known.get(customer, set())]
    return unknown, total


def erase(
    config: dict[str, Any],
    today: dt.date,
    only: str | None = None,
    by: str = "vpsfleet-backup-store",
    dry_run: bool = False,
    allow_mass_erasure: bool = False,
) -> dict[str, Any]:
    """Erases every terminated guest whose termination date is reached (or only `only`, which
    must be such a guest), and, for a whole run, the trees of guests the configuration does not
    name any more. Returns what was (or would be) erased and the problems met."""
    guests = {g["guest"]: g for g in config["guests"]}
    if only is not None:
        guest = guests.get(only)
        if guest is None:
            raise Refused(f"{only} is not a guest of this store")
        if guest.get("state") != "terminated":
            raise Refused(f"{only} is {guest.get('state')}, not terminated: nothing is erased")
        if not erase_due(guest, today):
            raise Refused(
                f"{only} is terminated on {guest.get('terminated_on')}: its backups are kept until that "
                f"date (today is {today.isoformat()}) and erased on it (M11)"
            )
    live_customers = {c["id"] for c in config["customers"] if c.get("guests")}
    erased: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    for guest in config["guests"]:
        if (only is not None and guest["guest"] != only) or not erase_due(guest, today):
            continue
        try:
            why = f"terminated on {guest.get('terminated_on')} (M11)"
            entry = erase_tree(
                config, guest["customer"], guest["guest"], why, by, dry_run, guest.get("terminated_on")
            )
            if entry:
                erased.append(entry)
            if guest["customer"] not in live_customers:
                drop_empty_customer(config, guest["customer"], dry_run)
        except (OSError, TenantError) as err:
            problems.append(problem("error", guest, f"erasure: {err}"))
    if only is None:
        erased += erase_unknown(config, by, dry_run, allow_mass_erasure, live_customers, problems)
    return {"changed": bool(erased), "erased": erased, "problems": problems}


def erase_unknown(
    config: dict[str, Any],
    by: str,
    dry_run: bool,
    allow_mass_erasure: bool,
    live_customers: set[str],
    problems: list[dict[str, Any]],
) -> list[dict[str, Any]]:
    """The trees of guests the store no longer hears about (out of the fleet, backups turned off,
    moved to another store): erased with a log line, never kept silently. Not on a configuration
    that names no guest while trees exist, nor when more than half of the trees (two or more)
    would go at once, unless `allow_mass_erasure`: a wrong configuration must not erase a store."""
    unknown, total = unknown_trees(config, problems)
    if not unknown:
        return []
    names = ", ".join(f"{c}/{g}" for c, g in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
    if not config["guests"]:
        text = f"the configuration names no guest but {len(unknown)} tree(s) are on the store ({names}): "
        problems.append(problem("refused", None, text + "nothing erased", "store"))
        return []
    if len(unknown) >= 2 and 2 * len(unknown) > total and not allow_mass_erasure:
        text = (
            f"{len(unknown)} of the {total} guest trees are in no configuration ({names}): nothing of them "
            "erased (a wrong configuration?). Check the fleet, then run `vpsfleet-backup-store erase "
            "--allow-mass-erasure`"
        )
        problems.append(problem("refused", None, text, "store"))
        return []
    erased = []
    for customer, guest in unknown:
        try:
            entry = erase_tree(config, customer, guest, UNKNOWN, by, dry_run)
            if entry:
                erased.append(entry)
            if customer not in live_customers:
                drop_empty_customer(config, customer, dry_run)
        except (OSError, TenantError) as err:
            problems.append(problem("error", {"guest": guest, "customer": customer}, f"erasure: {err}"))
    return erased


def erase_stale(config: dict[str, Any], only: str, by: str, dry_run: bool = False) -> dict[str, Any]:
    """Erases the tree a configured guest's name still holds for another identity (a name
    reused): the operator's decision, once the former guest's erasure is due (M11)."""
    guest = next((g for g in config["guests"] if g["guest"] == only), None)
    if guest is None:
        raise Refused(f"{only} is not a guest of this store")
    folder = guest_folder(config, guest)
    found = read_marker(meta_folder(config, guest["customer"]) / "guests" / only)
    if not os.path.lexists(folder):
        raise Refused(f"{only} has no tree on this store: nothing to erase")
    if found is None or found == guest.get("identity"):
        raise Refused(
            f"the tree of {only} belongs to {guest.get('identity')} (its marker says {found}): kept"
        )
    why = f"name reused: the tree held the sets of {found}"
    entry = erase_tree(config, guest["customer"], only, why, by, dry_run)
    return {"changed": entry is not None, "erased": [entry] if entry else []}
