"""`vpsfleet deploy plan ENV --from REV [--to REV]`: what a merge would do (issue 13).

The pipeline posts it on the merge request; `apply` (later work) will run the same steps.
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from vpsfleet.commands.operations import instant
from vpsfleet.deploy_changes import changes_between
from vpsfleet.deploy_plan import build_plan, render_json, render_text
from vpsfleet.deploy_revisions import WORKTREE, load_revisions
from vpsfleet.environments import display_path, fleet_path
from vpsfleet.history import HistoryUnavailable
from vpsfleet.loader import FleetInvalid


def register(subparsers: Any) -> None:
    deploy = subparsers.add_parser(
        "deploy", help="what a merge of the fleet file changes, and the steps that apply it"
    )
    verbs = deploy.add_subparsers(dest="verb", required=True, metavar="VERB")
    plan = verbs.add_parser(
        "plan", help="the changes between two revisions and the steps a merge would take"
    )
    plan.add_argument("env", help="environment name (inventories/ENV/fleet.yml) or a path")
    plan.add_argument("--from", dest="from_rev", required=True, metavar="REV",
                      help="the git revision deployed now (the merge's target branch)")
    plan.add_argument("--to", dest="to_rev", default=None, metavar="REV",
                      help=f"the git revision to deploy (default, or {WORKTREE}: the working tree)")
    plan.add_argument("--format", choices=("text", "json"), default="text")
    plan.add_argument("--now", type=instant, default=None, metavar="ISO-8601",
                      help="the instant SMTP blocks and mitigations are judged at (default: now)")
    plan.set_defaults(run=run_plan)


def run_plan(args: argparse.Namespace) -> int:
    path = fleet_path(args.env)
    shown = display_path(path)
    now: dt.datetime = args.now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    to_rev = args.to_rev or WORKTREE
    try:
        revisions = load_revisions(path, shown, args.from_rev, to_rev, now.date())
    except HistoryUnavailable as err:
        print(f"vpsfleet: {err}", file=sys.stderr)
        return 2
    except FleetInvalid as err:
        print(err.render(), file=sys.stderr)
        print(f"{len(err.problems)} problem(s): the change from {args.from_rev} to {to_rev} is "
              "refused; nothing planned.", file=sys.stderr)
        return 1
    changes = changes_between(revisions.before, revisions.after, now=now)
    plan = build_plan(revisions.before, revisions.after, changes, source=shown,
                      from_rev=args.from_rev, to_rev=to_rev)
    print(render_json(plan) if args.format == "json" else render_text(plan))
    return 0
