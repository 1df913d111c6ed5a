"""Retention of each guest's sets, with the guests' own rule (`select_expired`), the quarantine
of future-dated sets, and the removal of uploads left unfinished."""

from __future__ import annotations

import datetime as dt
import os
import shutil
import time
from pathlib import Path
from typing import Any

from vpsfleet_agents.backup.sets import future_sets, select_expired
from vpsfleet_agents.store.config import DEFAULT_MINIMUM_SETS, erase_due
from vpsfleet_agents.store.journal import log, problem
from vpsfleet_agents.store.listing import Listing
from vpsfleet_agents.store.tree import guest_folder, is_folder, store_folder, tree_size

PARTIAL_MAX_AGE = dt.timedelta(days=1)


def quarantine(config: dict[str, Any], guest: dict[str, Any], name: str) -> Path:
    """Moves a future-dated set out of the guest's reach, into its customer's records:
    `<customer>/.vpsfleet/quarantine/<guest>/<set>` (the customer can still read it)."""
    target_dir = store_folder(config, guest["customer"], "quarantine", guest["guest"])
    target = target_dir / name
    count = 1
    while os.path.lexists(target):
        count += 1
        target = target_dir / f"{name}.{count}"
    os.rename(guest_folder(config, guest) / name, target)
    return target


def _doomed(
    guest: dict[str, Any], listing: Listing, present: list[str], today: dt.date, now: float, minimum: int
) -> list[tuple[str, str]]:
    """The folders of one guest that go, each with why."""
    doomed: list[tuple[str, str]] = []
    days = guest.get("retention_days")
    if days:
        least = guest.get("retention_minimum_sets") or minimum  # the guest's own, if given
        expired = select_expired(present, today, int(days), least)
        doomed += [(n, f"older than {days} days") for n in expired if n in present]
    for name in listing.partials:
        age = now - os.lstat(listing.folder / name).st_mtime
        if age > PARTIAL_MAX_AGE.total_seconds():
            doomed.append((name, "unfinished upload older than a day"))
    return doomed


def retention(
    config: dict[str, Any], today: dt.date, now: float | None = None, dry_run: bool = False
) -> dict[str, Any]:
    """Per guest folder, each on its own: future-dated sets quarantined (unless most guests
    have them: then the store's clock is suspect and nothing moves), the sets `select_expired`
    names (older than the retention by folder name, never the newest, never below the minimum
    count of sets), and `.partial` folders untouched for over a day."""
    now = time.time() if now is None else now
    minimum = config.get("retention_minimum_sets", DEFAULT_MINIMUM_SETS)
    removed: list[dict[str, Any]] = []
    quarantined: list[dict[str, Any]] = []
    problems: list[dict[str, Any]] = []
    listings: list[tuple[dict[str, Any], Listing, list[str]]] = []
    for guest in config["guests"]:
        if erase_due(guest, today):
            continue  # erase's business
        try:
            listing = Listing(guest_folder(config, guest))
            if listing.garbage:
                text = "unexpected entries, left alone: " + ", ".join(listing.garbage)
                problems.append(problem("garbage", guest, text, entries=listing.garbage))
            listings.append((guest, listing, future_sets(listing.sets, today)))
        except Exception as err:  # one tenant's garbage never stops the others
            problems.append(problem("error", guest, f"retention: {type(err).__name__}: {err}"))
    with_sets = [item for item in listings if item[1].sets]
    ahead = [item for item in with_sets if item[2]]  # their newest set is a future one
    suspect = len(ahead) * 2 > len(with_sets) and len(ahead) > 0
    if suspect:
        text = (
            f"{len(ahead)} of the {len(with_sets)} guests' newest sets are dated after tomorrow "
            f"({(today + dt.timedelta(days=1)).isoformat()}): is this store's clock behind? Nothing "
            "quarantined; those sets are neither removed nor counted"
        )
        problems.append(problem("clock", None, text, "store"))
    for guest, listing, future in listings:
        try:
            if future and not suspect:
                text = f"sets dated after tomorrow, quarantined: {', '.join(future)} (a clock ran ahead?)"
                problems.append(problem("future", guest, text))
                for name in future:
                    target = None if dry_run else quarantine(config, guest, name)
                    quarantined.append(
                        {
                            "guest": guest["guest"],
                            "customer": guest["customer"],
                            "set": name,
                            "to": str(target) if target else None,
                        }
                    )
            present = [n for n in listing.sets if n not in future]
            for name, why in _doomed(guest, listing, present, today, now, minimum):
                path = listing.folder / name
                size, files = tree_size(path)
                if not dry_run:
                    if not is_folder(path):
                        continue  # replaced by something else meanwhile: left alone
                    shutil.rmtree(path)
                    log(f"retention: removed {path} ({why}; {size} bytes in {files} files)")
                removed.append({"guest": guest["guest"], "set": name, "reason": why, "bytes": size})
        except Exception as err:  # one tenant's garbage never stops the others
            problems.append(problem("error", guest, f"retention: {type(err).__name__}: {err}"))
    return {
        "changed": bool(removed or quarantined),
        "removed": removed,
        "quarantined": quarantined,
        "problems": problems,
    }
