"""`vpsfleet deploy plan|apply|nightly ENV`: what a merge would do, doing it, and what time alone
changes (issue 13; docs/deploy.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any

from vpsfleet.commands.operations import instant
from vpsfleet.deploy_apply import Settings, StepFailed, run_steps
from vpsfleet.deploy_changes import changes_between
from vpsfleet.deploy_nightly import NightlyStateUnreadable, record_run, since_for
from vpsfleet.deploy_plan import DeployPlan, build_plan, render_json, render_text
from vpsfleet.deploy_revisions import WORKTREE, Revisions, load_revisions
from vpsfleet.environments import display_path, fleet_path, repo_root
from vpsfleet.fleet import Fleet
from vpsfleet.history import HistoryUnavailable, previous_text
from vpsfleet.loader import FleetInvalid, check_fleet

STATE_ENV = "VPSFLEET_STATE_DIR"


def _env_and_now(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("env", help="environment name (inventories/ENV/fleet.yml) or a path")
    parser.add_argument("--now", type=instant, default=None, metavar="ISO-8601",
                        help="the instant SMTP blocks and mitigations are judged at (default: now)")


def _revisions(parser: argparse.ArgumentParser, to_help: str) -> None:
    parser.add_argument("--from", dest="from_rev", required=True, metavar="REV",
                        help="the git revision deployed now (the merge's target branch)")
    parser.add_argument("--to", dest="to_rev", default=None, metavar="REV", help=to_help)


def _step_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--state-dir", type=Path, default=None, metavar="DIR",
                        help=f"the record of notices sent, the last nightly run, the "
                             f"ansible-runner artifacts (default: ${STATE_ENV}, else "
                             ".vpsfleet-state/ENVIRONMENT); keep it between runs")
    parser.add_argument("--skip-pulumi", action="store_true",
                        help="do not run pulumi up: only for an environment whose machines are "
                             "not libvirt guests (the lab)")
    parser.add_argument("--pulumi-dir", type=Path, default=None, metavar="DIR",
                        help="the Pulumi project (default: pulumi/ of the repository)")
    parser.add_argument("--ansible-dir", type=Path, default=None, metavar="DIR",
                        help="holds playbooks/ and ansible.cfg (default: ansible/ of the repository)")
    parser.add_argument("--inventory", type=Path, action="append", default=None, metavar="FILE",
                        help="an inventory source, repeatable (default: the environment's "
                             "vpsfleet.yml beside its fleet file)")
    parser.add_argument("--relay-address", default=None, metavar="IP",
                        help="reach the relay at this address (its name is still what TLS checks)")
    parser.add_argument("--relay-ca", type=Path, default=None, metavar="FILE",
                        help="the CA certificate that signed the relay's (default: the system's)")
    parser.add_argument("--password-seed-file", type=Path, default=None, metavar="FILE",
                        help="the stack's vpsfleet:passwordSeed (default: $VPSFLEET_PASSWORD_SEED)")


def register(subparsers: Any) -> None:
    deploy = subparsers.add_parser(
        "deploy", help="what a merge of the fleet file changes, and the steps that apply it"
    )
    verbs = deploy.add_subparsers(dest="verb", required=True, metavar="VERB")
    plan = verbs.add_parser(
        "plan", help="the changes between two revisions and the steps a merge would take"
    )
    _env_and_now(plan)
    _revisions(plan, f"the git revision to deploy (default, or {WORKTREE}: the working tree)")
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.set_defaults(run=run_plan)
    apply = verbs.add_parser(
        "apply", help="run a merge's steps: pulumi up, the playbooks, the customer notices"
    )
    _env_and_now(apply)
    _revisions(apply, f"the git revision to deploy, checked out in the working tree (default, or "
                      f"{WORKTREE}: the working tree)")
    _step_options(apply)
    apply.set_defaults(run=run_apply)
    nightly = verbs.add_parser(
        "nightly", help="apply what time alone changed since the last run (ends of SMTP blocks "
                        "and mitigations)"
    )
    _env_and_now(nightly)
    nightly.add_argument("--since", type=instant, default=None, metavar="ISO-8601",
                         help="judge from this instant (default: the last nightly run recorded "
                              "in the state directory, else a day ago)")
    _step_options(nightly)
    nightly.set_defaults(run=run_nightly)


def _now(args: argparse.Namespace) -> dt.datetime:
    now: dt.datetime = args.now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    return now


def _load(args: argparse.Namespace, path: Path, shown: str, now: dt.datetime,
          refused: str) -> Revisions | int:
    to_rev = args.to_rev or WORKTREE
    try:
        return load_revisions(path, shown, args.from_rev, to_rev, now.date())
    except HistoryUnavailable as err:
        print(f"vpsfleet: {err}", file=sys.stderr)
        return 2
    except FleetInvalid as err:
        print(err.render(), file=sys.stderr)
        print(f"{len(err.problems)} problem(s): the change from {args.from_rev} to {to_rev} is "
              f"refused; {refused}.", file=sys.stderr)
        return 1


def _plan(args: argparse.Namespace, revisions: Revisions, shown: str,
          now: dt.datetime) -> DeployPlan:
    changes = changes_between(revisions.before, revisions.after, now=now)
    return build_plan(revisions.before, revisions.after, changes, source=shown,
                      from_rev=args.from_rev, to_rev=args.to_rev or WORKTREE)


def run_plan(args: argparse.Namespace) -> int:
    path = fleet_path(args.env)
    shown = display_path(path)
    now = _now(args)
    revisions = _load(args, path, shown, now, "nothing planned")
    if isinstance(revisions, int):
        return revisions
    plan = _plan(args, revisions, shown, now)
    print(render_json(plan) if args.format == "json" else render_text(plan))
    return 0


def _settings(args: argparse.Namespace, fleet: Fleet, path: Path) -> Settings:
    root = repo_root()
    state = args.state_dir or (Path(os.environ[STATE_ENV]) if os.environ.get(STATE_ENV)
                               else Path(".vpsfleet-state") / fleet.environment)
    default_inventory = path.parent / "vpsfleet.yml"
    inventories = args.inventory or ([default_inventory] if default_inventory.is_file() else [])
    return Settings(
        state_dir=state, skip_pulumi=args.skip_pulumi,
        pulumi_dir=args.pulumi_dir or root / "pulumi",
        ansible_dir=args.ansible_dir or root / "ansible",
        inventories=tuple(inventories), relay_address=args.relay_address,
        relay_ca=args.relay_ca, password_seed_file=args.password_seed_file,
    )


def _run(plan: DeployPlan, fleet: Fleet, settings: Settings) -> int:
    print(render_text(plan), flush=True)
    if plan.nothing_to_do:
        return 0
    print("", flush=True)
    try:
        run_steps(plan, fleet, settings, lambda line: print(line, flush=True))
    except StepFailed as err:
        print(f"vpsfleet: deploy stopped: {err}; the steps after it did not run.",
              file=sys.stderr)
        return 1
    print("deploy done.")
    return 0


def _checked_out(path: Path, to_rev: str) -> str | None:
    """Pulumi and Ansible read the working tree: it must hold the fleet of --to."""
    if to_rev == WORKTREE:
        return None
    if previous_text(path, to_rev) != path.read_text():
        return (f"the fleet file in the working tree ({path}) is not the one at {to_rev}, "
                f"which Pulumi and Ansible would not see: check out {to_rev} first; nothing "
                "applied.")
    return None


def run_apply(args: argparse.Namespace) -> int:
    path = fleet_path(args.env)
    shown = display_path(path)
    now = _now(args)
    revisions = _load(args, path, shown, now, "nothing applied")
    if isinstance(revisions, int):
        return revisions
    mismatch = _checked_out(path, args.to_rev or WORKTREE)
    if mismatch:
        print(f"vpsfleet: {mismatch}", file=sys.stderr)
        return 1
    plan = _plan(args, revisions, shown, now)
    return _run(plan, revisions.after, _settings(args, revisions.after, path))


def run_nightly(args: argparse.Namespace) -> int:
    path = fleet_path(args.env)
    shown = display_path(path)
    now = _now(args)
    fleet, problems = check_fleet(path, today=now.date())
    if fleet is None or problems:
        print(FleetInvalid(shown, problems).render(), file=sys.stderr)
        print(f"{len(problems)} problem(s): nothing applied.", file=sys.stderr)
        return 1
    settings = _settings(args, fleet, path)
    try:
        since = since_for(settings.state_dir, args.since, now)
    except NightlyStateUnreadable as err:
        print(f"vpsfleet: {err}", file=sys.stderr)
        return 1
    stamp = {m: m.astimezone(dt.UTC).isoformat().replace("+00:00", "Z") for m in (since, now)}
    changes = changes_between(fleet, fleet, now=now, before_now=since) if since < now else ()
    plan = build_plan(fleet, fleet, changes, source=shown, from_rev=stamp[since],
                      to_rev=stamp[now])
    code = _run(plan, fleet, settings)
    if code == 0:
        record_run(settings.state_dir, now)
    return code
