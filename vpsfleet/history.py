"""Checks of a change against the fleet file's previous version in git (GitOps review).

Only the previous file's raw data is read: an old file need not pass today's schema. What is
compared is what a customer's contract fixes: the datacenter (M10), the disk never shrinks (M9),
the address never changes (M3), and a guest is never dropped without being terminated (M11).
"""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

from vpsfleet.fleet import Fleet
from vpsfleet.loader import read_yaml
from vpsfleet.problems import Problem, item_path
from vpsfleet.schema import GuestState


class HistoryUnavailable(Exception):
    pass


def previous_text(path: Path, rev: str) -> str | None:
    """The file as it was at `rev`, or None if it did not exist then."""
    folder = path.resolve().parent
    spec = f"{rev}:./{path.name}"
    try:
        subprocess.run(
            ["git", "-C", str(folder), "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
            check=True, capture_output=True, text=True,
        )
    except (subprocess.CalledProcessError, FileNotFoundError) as err:
        raise HistoryUnavailable(f"{rev!r} is not a commit of the repository holding "
                                 f"{path}") from err
    shown = subprocess.run(
        ["git", "-C", str(folder), "show", spec], capture_output=True, text=True, check=False
    )
    if shown.returncode != 0:
        return None
    return shown.stdout


def _named(items: Any, key: str = "name") -> dict[str, dict[str, Any]]:
    if not isinstance(items, list):
        return {}
    return {i[key]: i for i in items if isinstance(i, dict) and isinstance(i.get(key), str)}


def compare(fleet: Fleet, old: Any, rev: str) -> list[Problem]:
    if not isinstance(old, dict):
        return []
    old_hosts = _named(old.get("hosts"))
    old_plans = _named(old.get("plans"))
    old_guests = _named(old.get("guests"))
    problems: list[Problem] = []
    current = {g.name for g in fleet.guests}
    for i, guest in enumerate(fleet.guests):
        before = old_guests.get(guest.name)
        if before is None:
            continue
        at = fleet.where("guests", i)
        was_terminated = before.get("state") == GuestState.TERMINATED.value
        if was_terminated and guest.state is not GuestState.TERMINATED:
            problems.append(
                Problem(item_path("guests", at, "state"), f"{guest.name} was terminated at {rev}: "
                        "its data is gone (M11); declare a new guest instead")
            )
            continue
        if guest.state is GuestState.TERMINATED:
            continue
        old_host = old_hosts.get(str(before.get("host")), {})
        old_dc = old_host.get("datacenter")
        new_dc = fleet.guest_datacenter(guest)
        if old_dc is not None and new_dc is not None and old_dc != new_dc:
            problems.append(
                Problem(item_path("guests", at, "host"), f"moves {guest.name} from datacenter "
                        f"{old_dc} to {new_dc}: the datacenter choice is final (M10)")
            )
        old_disk = old_plans.get(str(before.get("plan")), {}).get("disk_gb")
        plan = fleet.plan(guest.plan)
        if isinstance(old_disk, int) and plan is not None and plan.disk_gb < old_disk:
            problems.append(
                Problem(item_path("guests", at, "plan"), f"plan {plan.name} would shrink "
                        f"{guest.name}'s disk from {old_disk} GB to {plan.disk_gb} GB: a disk "
                        "only grows (M9)")
            )
        old_ip = before.get("ipv4")
        if old_ip is not None and guest.ipv4 is not None and str(guest.ipv4) != str(old_ip):
            problems.append(
                Problem(item_path("guests", at, "ipv4"), f"changes {guest.name}'s address from "
                        f"{old_ip} to {guest.ipv4}: a fixed IPv4 never changes while the "
                        "contract runs (M3)")
            )
    for name, before in old_guests.items():
        if name not in current and before.get("state") != GuestState.TERMINATED.value:
            problems.append(
                Problem("guests", f"{name} was removed while {before.get('state', 'active')}: "
                        "terminate it first (state: terminated, terminated_on: DATE) (M11)")
            )
    return problems


def check_against(fleet: Fleet, path: Path, rev: str) -> list[Problem]:
    text = previous_text(path, rev)
    if text is None:
        return []
    old, problems = read_yaml(text)
    if problems:
        return []  # a broken old file fixes nothing about the new one
    return compare(fleet, old, rev)
