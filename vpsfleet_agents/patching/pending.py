"""What an upgrade left pending on the guest: a reboot (and the packages that asked for it),
services still running deleted (updated) files, and what was upgraded, from dpkg's log."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

# Mapped files whose deletion means an updated library or binary still in use.
SYSTEM_PREFIXES = ("/usr/", "/lib", "/bin/", "/sbin/", "/opt/", "/etc/")
DELETED_MAP = re.compile(r"\s(/\S.*?) \(deleted\)$")


def reboot_packages(run: Path) -> tuple[bool, list[str]]:
    """Whether `/run/reboot-required` is there, and the packages `reboot-required.pkgs` names
    (Debian's kernel hook of unattended-upgrades writes both)."""
    flag = run / "reboot-required"
    if not flag.exists():
        return False, []
    try:
        lines = (run / "reboot-required.pkgs").read_text(encoding="utf-8").split()
    except OSError:
        lines = []
    return True, sorted(set(lines))


def maps_deleted_system_file(maps: str) -> bool:
    return any(
        (m := DELETED_MAP.search(line)) is not None and m.group(1).startswith(SYSTEM_PREFIXES)
        for line in maps.splitlines()
    )


def system_service(cgroup: str) -> str | None:
    """The system service a process belongs to, from its /proc/PID/cgroup; None for user
    sessions and containers, which are not ours to restart."""
    # cgroup v2 has one line, the hybrid layout several: the systemd one names the unit.
    paths = [line.split(":", 2)[-1] for line in cgroup.splitlines()]
    path = next((p for p in paths if "/system.slice/" in p), "")
    if not path:
        return None
    unit = path.split("/system.slice/", 1)[1].split("/", 1)[0]
    return unit if unit.endswith(".service") else None


def services_to_restart(proc: Path) -> list[str]:
    """systemd services whose processes still map a deleted system file (what needrestart finds)."""
    services: set[str] = set()
    for process in proc.glob("[0-9]*"):
        if process.name == "1":
            continue  # systemd itself: re-executed by the reboot, not restarted
        try:
            maps = (process / "maps").read_text(encoding="utf-8", errors="replace")
            cgroup = (process / "cgroup").read_text(encoding="utf-8")
        except OSError:
            continue
        if not maps_deleted_system_file(maps):
            continue
        unit = system_service(cgroup)
        if unit is not None:
            services.add(unit)
    return sorted(services)


def recent_upgrades(dpkg_log: Path, since: dt.datetime, new_packages: list[str]) -> list[str]:
    """`name old -> new` for each package upgraded since `since`, and `name version` for each
    package in `new_packages` installed since then (a new kernel is a new package; other
    installs are provisioning, not updates), from dpkg's own log (local time)."""
    floor = since.astimezone().replace(tzinfo=None)
    first: dict[str, str] = {}
    last: dict[str, str] = {}
    try:
        lines = dpkg_log.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return []
    for line in lines:
        parts = line.split()
        if len(parts) != 6 or parts[2] not in ("upgrade", "install"):
            continue
        name = parts[3].split(":", 1)[0]
        if parts[2] == "install" and name not in new_packages:
            continue
        try:
            when = dt.datetime.fromisoformat(f"{parts[0]} {parts[1]}")
        except ValueError:
            continue
        if when < floor:
            continue
        first.setdefault(name, parts[4])
        last[name] = parts[5]
    return [
        f"{name} {last[name]}" if first[name] == "<none>" else f"{name} {first[name]} -> {last[name]}"
        for name in sorted(last)
    ]
