"""FastNetMon's notify script (M28 detection): an attack on a guest's address, or on a dedicated
server's behind its datacenter's edge router, opens a mitigation start as a fleet change, on a
branch of a checkout of the fleet repository.

FastNetMon (`notify_script_path` in fastnetmon.conf) runs the script with four arguments, the
address, the direction (`incoming` / `outgoing`), the packets per second and the action (`ban`,
`unban`, and in some versions `attack_details`), and writes the attack's details on its standard
input for `ban` (`notify_script_pass_details`). It expects the script to read them all.

Only an incoming `ban` acts: the machine that holds the address gets `vpsfleet mitigation start`
with its Pro profile or the policy's default one, committed on a new branch `mitigation/...` with
the attack summary, and optionally pushed for a merge request. `unban` is ignored: the minimum
holds (M28) and the stop is an operator's edit. The details are the network's data, so they are
only ever quoted as text, and cut to a bounded size.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from vpsfleet.fleet import Fleet
from vpsfleet.loader import FleetInvalid, check_fleet
from vpsfleet.mitigation import MitigationRefused, Started, iso, start
from vpsfleet.schema import GuestState

ACTIONS = ("ban", "unban", "attack_details")
DIRECTIONS = ("incoming", "outgoing", "other")
BRANCH_PREFIX = "mitigation/"
MAX_DETAIL_LINES = 60  # a commit message quotes the summary lines and a sample of the flows
MAX_DETAIL_CHARS = 6000
_PRINTABLE = re.compile(r"[^\x20-\x7e\t]")


class HookError(Exception):
    """The notification cannot open a change; nothing was changed."""


@dataclass(frozen=True)
class Notification:
    address: ipaddress.IPv4Address
    direction: str
    pps: int
    action: str
    details: str  # FastNetMon's stdin, as received

    def detail(self, key: str) -> str | None:
        """A `Key: value` line of the details (`Attack type`, `Peak attack power`...)."""
        for line in self.details.splitlines():
            name, sep, value = line.partition(":")
            if sep and name.strip().lower() == key.lower():
                return _clean(value.strip())
        return None

    def summary(self) -> str:
        """One line for the fleet's `reason` and the commit's subject."""
        kind = self.detail("Attack type") or "attack"
        protocol = self.detail("Attack protocol")
        peak = self.detail("Peak attack power")
        parts = [f"FastNetMon: {self.direction} {kind}"]
        if protocol and protocol != "unknown":
            parts.append(f"({protocol})")
        parts.append(f"on {self.address}, {self.pps} pps")
        if peak:
            parts.append(f"(peak {peak})")
        return " ".join(parts)


def _clean(text: str) -> str:
    return _PRINTABLE.sub("?", text)


def parse_notification(args: list[str], details: str) -> Notification:
    """FastNetMon's four arguments and its stdin; every problem at once."""
    if len(args) != 4:
        raise HookError(f"expected FastNetMon's 4 arguments (address, direction, pps, action), "
                        f"got {len(args)}")
    raw_ip, direction, raw_pps, action = args
    problems = []
    address: ipaddress.IPv4Address | None = None
    try:
        address = ipaddress.IPv4Address(raw_ip)
    except ValueError:
        problems.append(f"address {_clean(raw_ip)!r} is not an IPv4 address")
    if direction not in DIRECTIONS:
        problems.append(f"direction {_clean(direction)!r} is not one of {', '.join(DIRECTIONS)}")
    if not raw_pps.isdigit():
        problems.append(f"packets per second {_clean(raw_pps)!r} is not a number")
    if action not in ACTIONS:
        problems.append(f"action {_clean(action)!r} is not one of {', '.join(ACTIONS)}")
    if problems or address is None:
        raise HookError("; ".join(problems))
    return Notification(address, direction, int(raw_pps), action, details)


def target_at(fleet: Fleet, address: ipaddress.IPv4Address) -> str:
    """The name of the live guest, or of the live dedicated server behind an edge router (which
    enforces its mitigation, M28 for 004), holding the address; HookError says why not."""
    for guest in fleet.guests:
        if guest.ipv4 == address and guest.state is not GuestState.TERMINATED:
            return guest.name
    for server in fleet.dedicated_servers:
        if server.ipv4 != address or server.state is GuestState.TERMINATED:
            continue
        place = fleet.datacenter(server.datacenter)
        if place is None or place.edge_router is None:
            raise HookError(f"{address} is dedicated server {server.name}, whose datacenter "
                            f"{server.datacenter} has no edge router: nothing there can mitigate "
                            "it (docs/edge-router.md)")
        return server.name
    raise HookError(f"{address} is no live guest's or dedicated server's address in the fleet: "
                    "nothing to mitigate")


# --- git ---------------------------------------------------------------------------------------


def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        raise HookError(f"git {' '.join(args)}: {done.stderr.strip() or done.stdout.strip()}")
    return done.stdout.strip()


def _identity(repo: Path) -> list[str]:
    """The hook commits as itself unless the checkout names a committer."""
    configured = subprocess.run(["git", "-C", str(repo), "config", "user.email"],
                                capture_output=True, text=True, check=False)
    if configured.stdout.strip():
        return []
    return ["-c", "user.name=vpsfleet mitigation hook", "-c", "user.email=vpsfleet-hook@localhost"]


def branch_name(guest: str, now: dt.datetime) -> str:
    return f"{BRANCH_PREFIX}{guest}-{now.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}"


def commit_message(started: Started, notification: Notification) -> str:
    lines = [_clean(line) for line in notification.details.strip().splitlines()]
    quoted = "\n".join(lines[:MAX_DETAIL_LINES])[:MAX_DETAIL_CHARS]
    cut = "\n[... cut]" if len(lines) > MAX_DETAIL_LINES or len(quoted) == MAX_DETAIL_CHARS else ""
    return (
        f"mitigation start {started.guest}: {notification.summary()}\n\n"
        f"M28: profile {started.profile} ({started.profile_from}) since {iso(started.since)}, "
        f"at least {started.minimum_hours} h: it may end from {iso(started.earliest_end)} on.\n"
        f"Customer notice: mitigation_start.\n\n"
        f"FastNetMon's attack details:\n\n{quoted or '(none)'}{cut}\n"
    )


@dataclass(frozen=True)
class Opened:
    branch: str
    commit: str
    started: Started
    pushed_to: str | None


def open_change(repo: Path, fleet_file: Path, notification: Notification, *, now: dt.datetime,
                push: str | None = None, merge_request: bool = False) -> Opened:
    """Commits the start on a new branch from the checkout's current one, pushes it if asked,
    and leaves the checkout where it was. Any failure leaves the checkout and the file as
    they were."""
    fleet, problems = check_fleet(fleet_file, today=now.date())
    if problems or fleet is None:
        raise FleetInvalid(fleet_file, problems)
    name = target_at(fleet, notification.address)
    if _git(repo, "status", "--porcelain"):
        raise HookError(f"the checkout {repo} has uncommitted changes: the hook only works on "
                        "a clean checkout")
    base = _git(repo, "rev-parse", "--abbrev-ref", "HEAD")
    pending = _git(repo, "branch", "--list", f"{BRANCH_PREFIX}{name}-*", "--no-merged", "HEAD")
    if pending:
        names = ", ".join(line.strip(" *+") for line in pending.splitlines())
        raise MitigationRefused(f"{name}: a mitigation change is already open "
                                f"({names}), not merged yet")
    branch = branch_name(name, now)
    _git(repo, "switch", "--quiet", "-c", branch)
    try:
        started = start(fleet_file, name, profile=None, reason=notification.summary(),
                        now=now)
        _git(repo, "add", "--", str(fleet_file.resolve()))
        _git(repo, *_identity(repo), "commit", "--quiet", "-m",
             commit_message(started, notification))
        commit = _git(repo, "rev-parse", "HEAD")
        if push is not None:
            options = ["-o", "merge_request.create", "-o",
                       f"merge_request.target={base}"] if merge_request else []
            _git(repo, "push", "--quiet", *options, push, f"{branch}:{branch}")
    except BaseException:
        _git(repo, "checkout", "--quiet", "--force", base)
        subprocess.run(["git", "-C", str(repo), "branch", "--quiet", "-D", branch],
                       capture_output=True, check=False)
        raise
    _git(repo, "switch", "--quiet", base)
    return Opened(branch, commit, started, push)
