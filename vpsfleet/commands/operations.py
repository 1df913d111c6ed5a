"""`vpsfleet smtp block|unblock`, `suspend|resume`, `resize`: operations as fleet-file edits.

GitOps: each command edits the guest in the fleet file (round-trip, comments kept), checks the
whole file, and writes it only if it is valid. Committing and merging the change is what makes
`pulumi up` apply it: an SMTP block, a suspension or a resume redefines the guest's port filter
only (the guest keeps running); a resize replaces the domain (a reboot) and never the volume.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from vpsfleet.environments import display_path, fleet_path
from vpsfleet.filters import smtp_block_active
from vpsfleet.fleet import Fleet
from vpsfleet.fleet_edit import (
    delete_keys,
    find_item,
    insert_after,
    load_document,
    utc,
    write_checked,
)
from vpsfleet.loader import FleetInvalid, check_fleet
from vpsfleet.schema import DedicatedServer, Guest, GuestState
from vpsfleet.values import one_line


class OperationRefused(Exception):
    """The operation breaks a promise or does not apply; the fleet file is unchanged."""


# --- round-trip editing -------------------------------------------------------------------------


def _load(path: Path, today: dt.date) -> tuple[Fleet, Any]:
    fleet, problems = check_fleet(path, today=today)
    if problems or fleet is None:
        raise FleetInvalid(path, problems)
    return fleet, load_document(path)


def _guest_item(doc: Any, name: str) -> CommentedMap:
    item = find_item(doc, ("guests",), name)
    if item is None:
        raise OperationRefused(f"no guest named {name!r}")
    return item


def _target_item(doc: Any, name: str) -> CommentedMap:
    """A guest's or a dedicated server's item: the network operations (SMTP block, suspension)
    apply to both; a dedicated server's are kept at its datacenter's edge (edge_rules.py)."""
    item = find_item(doc, ("guests", "dedicated_servers"), name)
    if item is None:
        raise OperationRefused(f"no guest named {name!r} nor dedicated server")
    return item


def live_target(fleet: Fleet, name: str) -> Guest | DedicatedServer:
    """A live guest, or a dedicated server that is not terminated."""
    target: Guest | DedicatedServer | None = fleet.guest(name)
    if target is None:
        target = next((s for s in fleet.dedicated_servers if s.name == name), None)
    if target is None:
        raise OperationRefused(f"no guest named {name!r} nor dedicated server")
    if target.state is GuestState.TERMINATED:
        raise OperationRefused(f"{name} is terminated")
    return target


def _live_guest(fleet: Fleet, name: str) -> Guest:
    guest = fleet.guest(name)
    if guest is None:
        raise OperationRefused(f"no guest named {name!r}")
    if guest.state is GuestState.TERMINATED:
        raise OperationRefused(f"guest {name} is terminated")
    return guest


# --- SMTP blocks (M6) ---------------------------------------------------------------------------


def block_duration(fleet: Fleet, block_number: int) -> dt.timedelta:
    """The n-th block's duration (1-based): each new block lasts longer, the last duration
    repeats (policy.smtp_block.durations_hours)."""
    hours = fleet.policy.smtp_block.durations_hours
    return dt.timedelta(hours=hours[min(block_number, len(hours)) - 1])


def smtp_block(path: Path, name: str, *, reason: str, now: dt.datetime,
               indefinite: bool = False) -> dict[str, Any]:
    """Appends the guest's next SMTP block (M6). From the policy's `refuse_unblock_from`-th
    block on, the provider may also make it indefinite (no `until`)."""
    now = utc(now).replace(microsecond=0)
    fleet, doc = _load(path, now.date())
    guest = live_target(fleet, name)
    if any(smtp_block_active(block, now) for block in guest.smtp_blocks):
        raise OperationRefused(f"guest {name} already has an active SMTP block")
    number = len(guest.smtp_blocks) + 1
    threshold = fleet.policy.smtp_block.refuse_unblock_from
    if indefinite and number < threshold:
        raise OperationRefused(f"guest {name}: block number {number} cannot be indefinite, only "
                               f"from block {threshold} on (M6)")
    if not reason.strip():
        raise OperationRefused("a reason is required")
    entry = CommentedMap([
        ("blocked_at", now),
        ("until", None if indefinite else now + block_duration(fleet, number)),
        ("reason", reason),
    ])
    item = _target_item(doc, name)
    if item.get("smtp_blocks") is None:
        item["smtp_blocks"] = CommentedSeq()
    item["smtp_blocks"].append(entry)
    write_checked(path, doc, now.date())
    return {"number": number, "until": entry["until"]}


def smtp_unblock(path: Path, name: str, *, reason: str, force: bool,
                 now: dt.datetime) -> int:
    """Lifts the active block. From the policy's `refuse_unblock_from`-th block on, the
    provider may refuse (M6): lifting it takes `force` and a reason, both recorded."""
    now = utc(now).replace(microsecond=0)
    fleet, doc = _load(path, now.date())
    guest = live_target(fleet, name)
    active = [i for i, block in enumerate(guest.smtp_blocks) if smtp_block_active(block, now)]
    if not active:
        raise OperationRefused(f"guest {name} has no active SMTP block")
    index = active[-1]
    number = index + 1
    threshold = fleet.policy.smtp_block.refuse_unblock_from
    if number >= threshold and not force:
        raise OperationRefused(
            f"guest {name}: this is SMTP block number {number}; from block {threshold} on the "
            "provider refuses to unblock (M6) unless an operator decides otherwise: "
            "--force --reason '...'"
        )
    if not reason.strip():
        raise OperationRefused("a reason is required")
    block = _target_item(doc, name)["smtp_blocks"][index]
    block["lifted_at"] = now
    block["lift_reason"] = reason
    if number >= threshold:
        block["forced"] = True
    write_checked(path, doc, now.date())
    return number


# --- suspension (M7) ----------------------------------------------------------------------------


def suspend(path: Path, name: str, *, reason: str, today: dt.date) -> None:
    fleet, doc = _load(path, today)
    guest = live_target(fleet, name)
    if guest.state is GuestState.SUSPENDED:
        raise OperationRefused(f"{name} is already suspended")
    item = _target_item(doc, name)
    insert_after(item, "ipv4", [("state", "suspended"), ("suspended_on", today)])
    if reason:
        try:
            one_line(reason)  # a comment too: a newline would write YAML into the file
        except ValueError as err:
            raise OperationRefused(f"--reason: {err}") from None
        item.yaml_add_eol_comment(reason, "state")
    write_checked(path, doc, today)


def resume(path: Path, name: str, *, today: dt.date) -> None:
    fleet, doc = _load(path, today)
    guest = live_target(fleet, name)
    if guest.state is not GuestState.SUSPENDED:
        raise OperationRefused(f"{name} is not suspended")
    delete_keys(_target_item(doc, name), "state", "suspended_on")
    write_checked(path, doc, today)


# --- termination (M11) -------------------------------------------------------------------------


def terminate(path: Path, name: str, *, on: dt.date) -> str | None:
    """Marks the guest terminated on `on`: the next `pulumi up` removes its filter, seed disk,
    domain and (once unprotected) its volume. Its address then goes to quarantine (M3, M11)."""
    from vpsfleet.ipam import release  # the IPAM's own round-trip edit

    fleet, doc = _load(path, on)
    guest = _live_guest(fleet, name)
    item = _guest_item(doc, name)
    delete_keys(item, "state", "suspended_on")
    insert_after(item, "ipv4", [("state", "terminated"), ("terminated_on", on)])
    write_checked(path, doc, on)
    if guest.ipv4 is None:
        return None
    return str(release(path, name, today=on))


# --- plan change (M9) ---------------------------------------------------------------------------


def resize(path: Path, name: str, plan: str, *, today: dt.date) -> dict[str, Any]:
    """Moves a guest to another plan. vCPU and RAM change through a planned replacement of the
    domain (a reboot); the volume is never replaced, so a disk can only grow, out of band."""
    fleet, doc = _load(path, today)
    guest = _live_guest(fleet, name)
    old, new = fleet.plan(guest.plan), fleet.plan(plan)
    if new is None:
        raise OperationRefused(f"no plan named {plan!r}")
    assert old is not None  # the fleet is valid
    if new.name == old.name:
        raise OperationRefused(f"guest {name} is already on plan {plan}")
    if new.disk_gb < old.disk_gb:
        raise OperationRefused(
            f"plan {plan} has a smaller disk ({new.disk_gb} GB < {old.disk_gb} GB): a disk never "
            "shrinks (M2, M9)"
        )
    _guest_item(doc, name)["plan"] = plan
    write_checked(path, doc, today)
    return {
        "reboot": (new.vcpu, new.ram_mb) != (old.vcpu, old.ram_mb),
        "grow_gb": new.disk_gb - old.disk_gb,
        "disk_gb": new.disk_gb,
    }


# --- command line -------------------------------------------------------------------------------


def _now(moment: dt.datetime | None) -> dt.datetime:
    return dt.datetime.now(dt.UTC) if moment is None else moment


def instant(text: str) -> dt.datetime:
    """`--now`: an ISO-8601 instant (UTC when it names no offset); argparse reports a bad one."""
    try:
        return utc(dt.datetime.fromisoformat(text))
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an ISO-8601 instant") from None


def register(subparsers: Any) -> None:
    smtp = subparsers.add_parser("smtp", help="block or unblock a guest's outbound port 25 (M6)")
    verbs = smtp.add_subparsers(dest="verb", required=True, metavar="VERB")
    block = verbs.add_parser("block", help="append a block with the policy's next duration")
    block.add_argument("--indefinite", action="store_true",
                       help="no end date (only from the policy's refuse_unblock_from-th block)")
    unblock = verbs.add_parser("unblock", help="lift the active block")
    unblock.add_argument("--force", action="store_true",
                         help="lift a block the policy lets the provider refuse to lift")
    block.set_defaults(run=run_smtp_block)
    unblock.set_defaults(run=run_smtp_unblock)

    susp = subparsers.add_parser("suspend", help="cut a guest off but its management path (M7)")
    res = subparsers.add_parser("resume", help="give a suspended guest its network back")
    susp.set_defaults(run=run_suspend)
    res.set_defaults(run=run_resume)

    end = subparsers.add_parser("terminate", help="end a guest's contract: resources removed, "
                                "address quarantined (M11)")
    end.set_defaults(run=run_terminate)

    size = subparsers.add_parser("resize", help="move a guest to another plan (M9)")
    size.set_defaults(run=run_resize)

    for parser in (block, unblock, susp, res, end, size):
        parser.add_argument("env", help="environment name (inventories/ENV/fleet.yml) or a path")
        parser.add_argument("guest")
        parser.add_argument("--now", metavar="ISO-8601", type=instant,
                            help="the instant of the operation (default: now, UTC)")
    size.add_argument("plan")
    for parser in (block, unblock):
        parser.add_argument("--reason", required=True)
    susp.add_argument("--reason", default="", help="kept as a comment on the guest's state")


def apply_edit(args: argparse.Namespace, action: Any,
               refused: tuple[type[Exception], ...] = (OperationRefused,)) -> int:
    """Runs one fleet edit of a guest (args.env, args.guest) and says what it did, or why it
    refused with the file unchanged (exit 1). Shared by every operation command."""
    path = fleet_path(args.env)
    try:
        message = action(path)
    except FleetInvalid as err:
        raise FleetInvalid(display_path(path), err.problems) from None
    except refused as err:
        print(f"vpsfleet: {err}; {display_path(path)} is unchanged", file=sys.stderr)
        return 1
    # The merge's pipeline applies it (`vpsfleet deploy apply`): Pulumi's port filter for a
    # guest, the datacenter's edge router for a dedicated server.
    print(f"{args.guest}: {message} in {display_path(path)}; commit it for review: the merge's "
          "`vpsfleet deploy apply` applies it")
    return 0


def run_smtp_block(args: argparse.Namespace) -> int:
    def act(path: Path) -> str:
        done = smtp_block(path, args.guest, reason=args.reason, now=_now(args.now),
                          indefinite=args.indefinite)
        until = done["until"]
        end = f"until {until:%Y-%m-%dT%H:%M:%SZ}" if until else "with no end (lift with --force)"
        return f"SMTP block number {done['number']} {end}"
    return apply_edit(args, act)


def run_smtp_unblock(args: argparse.Namespace) -> int:
    def act(path: Path) -> str:
        number = smtp_unblock(path, args.guest, reason=args.reason, force=args.force,
                              now=_now(args.now))
        return f"SMTP block number {number} lifted"
    return apply_edit(args, act)


def run_suspend(args: argparse.Namespace) -> int:
    def act(path: Path) -> str:
        suspend(path, args.guest, reason=args.reason, today=_now(args.now).date())
        return "suspended (it keeps running; only the management path stays open)"
    return apply_edit(args, act)


def run_resume(args: argparse.Namespace) -> int:
    def act(path: Path) -> str:
        resume(path, args.guest, today=_now(args.now).date())
        return "resumed"
    return apply_edit(args, act)


def run_resize(args: argparse.Namespace) -> int:
    def act(path: Path) -> str:
        done = resize(path, args.guest, args.plan, today=_now(args.now).date())
        steps = ["domain replaced at the next `pulumi up` (a reboot)" if done["reboot"]
                 else "no vCPU/RAM change"]
        if done["grow_gb"]:
            steps.append(f"then grow the disk to {done['disk_gb']} GB out of band: "
                         f"`virsh blockresize {args.guest} vda {done['disk_gb']}G` on its host, "
                         "then grow the partition and file system inside the guest")
        return f"moved to plan {args.plan}: " + "; ".join(steps)
    return apply_edit(args, act)


def run_terminate(args: argparse.Namespace) -> int:
    def act(path: Path) -> str:
        address = terminate(path, args.guest, on=_now(args.now).date())
        held = f"; {address} quarantined" if address else ""
        return (f"terminated{held}. Its volume is protected: `pulumi state unprotect` it "
                "(see the stack output terminated_volumes) before `pulumi up` deletes it")
    return apply_edit(args, act)
