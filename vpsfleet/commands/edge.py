"""`vpsfleet edge render ENV DATACENTER`: the datacenter edge router's nftables ruleset, which
keeps the dedicated servers' network promises (004: M5, M6, M7, M28; docs/edge-router.md)."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from vpsfleet.commands.operations import instant
from vpsfleet.edge_rules import EdgeError, render_ruleset
from vpsfleet.environments import display_path, fleet_path
from vpsfleet.loader import FleetInvalid, check_fleet


def register(subparsers: Any) -> None:
    edge = subparsers.add_parser(
        "edge", help="the datacenter edge router's rules for its dedicated servers (M5, M6, M7, M28)"
    )
    verbs = edge.add_subparsers(dest="verb", required=True, metavar="VERB")
    render = verbs.add_parser("render", help="print (or write) the edge router's `nft -f` file")
    render.add_argument("env", help="environment name (inventories/ENV/fleet.yml) or a path")
    render.add_argument("datacenter", help="the datacenter's code")
    render.add_argument(
        "--now",
        metavar="ISO-8601",
        type=instant,
        help="the instant the states are evaluated at (default: now, UTC)",
    )
    render.add_argument(
        "--output", "-o", type=Path, help="write the file there (atomically) instead of printing it"
    )
    render.set_defaults(run=run_render)


def run_render(args: argparse.Namespace) -> int:
    now: dt.datetime = args.now or dt.datetime.now(dt.UTC).replace(microsecond=0)
    path = fleet_path(args.env)
    fleet, problems = check_fleet(path, today=now.date())
    if problems or fleet is None:
        raise FleetInvalid(display_path(path), problems)
    try:
        text = render_ruleset(fleet, args.datacenter, now)
    except EdgeError as err:
        print(f"vpsfleet: {err}", file=sys.stderr)
        return 1
    output: Path | None = args.output
    if output is None:
        sys.stdout.write(text)
        return 0
    fd, tmp = tempfile.mkstemp(dir=output.parent, prefix=f".{output.name}-")
    with os.fdopen(fd, "w") as handle:
        handle.write(text)
    os.chmod(tmp, 0o644)
    os.replace(tmp, output)
    return 0
