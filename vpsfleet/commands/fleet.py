"""`vpsfleet validate` and `vpsfleet show`."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from vpsfleet.environments import display_path, fleet_path
from vpsfleet.history import HistoryUnavailable, check_against
from vpsfleet.loader import FleetInvalid, check_fleet, load_fleet
from vpsfleet.show import render, render_traffic

PROMETHEUS_PORT = 9090  # the monitor's Prometheus (role monitor), as `sla report` reaches it


def add_today(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--today", type=dt.date.fromisoformat, default=None, metavar="YYYY-MM-DD",
        help="the date quarantines and due dates are judged at (default: today)",
    )


def register(subparsers: Any) -> None:
    validate = subparsers.add_parser(
        "validate", help="check a fleet file and list every problem with its location"
    )
    validate.add_argument("env", help="environment name (inventories/ENV/fleet.yml) or a path")
    validate.add_argument(
        "--against", metavar="REV",
        help="also check the change since git revision REV (datacenter, disk, address, removal)",
    )
    add_today(validate)
    validate.set_defaults(run=run_validate)

    show = subparsers.add_parser("show", help="what the fleet declares, at a glance")
    show.add_argument("env")
    add_today(show)
    show.add_argument(
        "--traffic", action="store_true",
        help="also each guest's traffic this cycle against its quota, throttled or not (M8), from "
             "the monitor's Prometheus",
    )
    show.add_argument(
        "--prometheus", metavar="URL",
        help="the Prometheus to read the traffic from (implies --traffic; default: the fleet's "
             f"first monitor, http://ADDRESS:{PROMETHEUS_PORT})",
    )
    show.set_defaults(run=run_show)


def run_validate(args: argparse.Namespace) -> int:
    path = fleet_path(args.env)
    shown = display_path(path)
    fleet, problems = check_fleet(path, today=args.today)
    if fleet is not None and args.against:
        try:
            problems += check_against(fleet, path, args.against, today=args.today)
        except HistoryUnavailable as err:
            print(f"vpsfleet: {err}", file=sys.stderr)
            return 2
    if problems:
        raise FleetInvalid(shown, problems)
    assert fleet is not None
    print(f"{shown}: valid ({len(fleet.hosts)} hosts, {len(fleet.guests)} guests, "
          f"{len(fleet.dedicated_servers)} dedicated servers)")
    return 0


def run_show(args: argparse.Namespace) -> int:
    path = fleet_path(args.env)
    try:
        fleet = load_fleet(path, today=args.today)
    except FleetInvalid as err:
        raise FleetInvalid(display_path(path), err.problems) from None
    print(render(fleet, args.today or dt.date.today()))
    if args.traffic or args.prometheus:
        url = args.prometheus
        if url is None and fleet.monitors:
            url = f"http://{fleet.monitors[0].address}:{PROMETHEUS_PORT}"
        print()
        print(render_traffic(fleet, url, dt.datetime.now(dt.UTC)))
    return 0
