"""`vpsfleet mitigation start|stop|hook`: DDoS mitigation (M28) as fleet edits, and FastNetMon's
notify script (docs/mitigation.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from vpsfleet.commands.operations import apply_edit, instant
from vpsfleet.environments import fleet_path
from vpsfleet.mitigation import MitigationRefused, iso, start, stop
from vpsfleet.mitigation_hook import HookError, open_change, parse_notification


def register(subparsers: Any) -> None:
    mitigation = subparsers.add_parser("mitigation", help="start or stop a guest's DDoS "
                                       "mitigation; FastNetMon's notify hook (M28)")
    verbs = mitigation.add_subparsers(dest="verb", required=True, metavar="VERB")
    begin = verbs.add_parser("start", help="put the guest under mitigation for at least its "
                             "offer's minimum")
    begin.add_argument("--profile", help="a profile of policy.mitigation.profiles (default: the "
                       "customer's Pro profile, else policy.mitigation.default_profile)")
    begin.add_argument("--reason", required=True, help="what detected the attack")
    begin.add_argument("--override-customer-profile", action="store_true",
                       help="impose --profile on a Pro customer who chose another")
    begin.set_defaults(run=run_start)
    end = verbs.add_parser("stop", help="record the end of the mitigation (refused before its "
                           "minimum)")
    end.set_defaults(run=run_stop)
    for parser in (begin, end):
        parser.add_argument("env", help="environment name (inventories/ENV/fleet.yml) or a path")
        parser.add_argument("guest")
    hook = verbs.add_parser("hook", help="FastNetMon's notify script: an incoming ban opens a "
                            "start on a new branch of the fleet checkout")
    hook.add_argument("env", help="environment name (inventories/ENV/fleet.yml in --repo) or "
                      "a path")
    # FastNetMon's four arguments, as it passes them to its notify script.
    hook.add_argument("address", help="the address under attack")
    hook.add_argument("direction", help="incoming, outgoing or other")
    hook.add_argument("pps", help="the attack's packets per second")
    hook.add_argument("action", help="ban, unban or attack_details")
    hook.add_argument("--repo", type=Path, help="the fleet repository's checkout (default: the "
                      "one holding the fleet file)")
    hook.add_argument("--push", metavar="REMOTE", help="push the branch to this remote")
    hook.add_argument("--merge-request", action="store_true",
                      help="with --push: ask a GitLab remote to open a merge request")
    hook.set_defaults(run=run_hook)
    for parser in (begin, end, hook):
        parser.add_argument("--now", metavar="ISO-8601", type=instant,
                            help="the instant of the operation (default: now, UTC)")


def _now(args: argparse.Namespace) -> dt.datetime:
    return dt.datetime.now(dt.UTC) if args.now is None else args.now


def _edit(args: argparse.Namespace, action: Any) -> int:
    return apply_edit(args, action, refused=(MitigationRefused,))


def run_start(args: argparse.Namespace) -> int:
    def act(path: Path) -> str:
        done = start(path, args.guest, profile=args.profile, reason=args.reason,
                     now=_now(args), override_customer_profile=args.override_customer_profile)
        return (f"mitigation on since {iso(done.since)}, profile {done.profile} "
                f"({done.profile_from}); it may end from {iso(done.earliest_end)} on "
                f"({done.minimum_hours} h, M28); customer notice: mitigation_start")
    return _edit(args, act)


def run_stop(args: argparse.Namespace) -> int:
    def act(path: Path) -> str:
        done = stop(path, args.guest, now=_now(args))
        return f"mitigation since {iso(done.since)} ends at {iso(done.ends_at)}"
    return _edit(args, act)


def _hook_file(args: argparse.Namespace) -> Path:
    env: str = args.env
    repo: Path | None = args.repo
    if repo is None:
        return fleet_path(env)
    expected = repo / "inventories" / env / "fleet.yml"
    for candidate in (repo / env, repo / env / "fleet.yml", expected):
        if candidate.is_file():
            return candidate
    raise HookError(f"no fleet file for {env!r} in {repo} (expected {expected})")


def run_hook(args: argparse.Namespace) -> int:
    # FastNetMon writes details for a ban (and attack_details) and expects them read to the
    # end, whatever the hook then does with them; for an unban it writes nothing.
    details = ""
    if args.action != "unban" and sys.stdin is not None and not sys.stdin.isatty():
        details = sys.stdin.read()
    try:
        notification = parse_notification(
            [args.address, args.direction, args.pps, args.action], details)
        if notification.action == "unban":
            print(f"vpsfleet: unban of {notification.address} ignored: a mitigation stays on "
                  "at least its minimum and an operator stops it (M28)")
            return 0
        if notification.action != "ban":
            print(f"vpsfleet: {notification.action} of {notification.address} ignored: the "
                  "ban opened the change")
            return 0
        if notification.direction != "incoming":
            print(f"vpsfleet: {notification.direction} attack from {notification.address} "
                  "ignored: mitigation protects a guest under attack; a guest that attacks "
                  "is an operator's decision (vpsfleet suspend, M7)")
            return 0
        path = _hook_file(args)
        repo = args.repo or path.resolve().parent
        opened = open_change(repo, path, notification, now=_now(args), push=args.push,
                             merge_request=args.merge_request)
    except (HookError, MitigationRefused) as err:
        print(f"vpsfleet: {err}; nothing was changed", file=sys.stderr)
        return 1
    pushed = f", pushed to {opened.pushed_to}" if opened.pushed_to else ""
    print(f"{opened.started.guest}: mitigation start committed on branch {opened.branch} "
          f"({opened.commit[:12]}{pushed}); profile {opened.started.profile}, it may end from "
          f"{iso(opened.started.earliest_end)} on (M28)")
    return 0
