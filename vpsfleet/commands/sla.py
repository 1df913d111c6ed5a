"""`vpsfleet sla report ENV --month YYYY-MM`: the month's availability and credits (M25-M27).

Exit codes: 0 the report; 1 the fleet file is invalid; 2 bad input (month, machine, no
Prometheus known); 3 Prometheus unreachable or answering something else than its API.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path
from typing import Any

from vpsfleet import sla_report, sla_svg
from vpsfleet.environments import display_path, fleet_path
from vpsfleet.loader import FleetInvalid, load_fleet
from vpsfleet.prometheus import Prometheus, PrometheusError
from vpsfleet.sla import from_ms, month_bounds

MONTH = re.compile(r"([0-9]{4})-(0[1-9]|1[0-2])")
PROMETHEUS_PORT = 9090


def register(subparsers: Any) -> None:
    sla = subparsers.add_parser("sla", help="availability, incidents and credits (M25-M27)")
    commands = sla.add_subparsers(dest="sla_command", required=True, metavar="SUBCOMMAND")
    report = commands.add_parser(
        "report", help="a month's availability per guest, from the ICMP probes in Prometheus"
    )
    report.add_argument("env", help="environment name (inventories/ENV/fleet.yml) or a path")
    report.add_argument("--month", required=True, metavar="YYYY-MM",
                        help="a calendar month of the provider's time zone (policy.sla.time_zone)")
    report.add_argument("--prometheus", metavar="URL",
                        help="default: the fleet's first monitor, http://ADDRESS:9090")
    report.add_argument("--format", choices=("table", "json", "csv"), default="table")
    report.add_argument("--svg", type=Path, metavar="FILE", help="also draw the month there")
    report.add_argument("--guest", action="append", default=[], metavar="NAME",
                        help="only this guest or dedicated server (repeatable)")
    report.set_defaults(run=run_report)


def _fail(message: str, code: int) -> int:
    print(f"vpsfleet sla report: {message}", file=sys.stderr)
    return code


def run_report(args: argparse.Namespace) -> int:
    match = MONTH.fullmatch(args.month)
    if not match:
        return _fail(f"--month {args.month!r} is not a month YYYY-MM", 2)
    year, month = int(match[1]), int(match[2])
    if not 1970 <= year <= 2999:
        return _fail(f"--month {args.month} is not a plausible month", 2)
    path = fleet_path(args.env)
    try:
        fleet = load_fleet(path)
    except FleetInvalid as err:
        raise FleetInvalid(display_path(path), err.problems) from None
    zone = fleet.policy.sla.time_zone
    start, end = month_bounds(year, month, sla_report.zone_of(fleet))
    now = sla_report.now_ms()
    if start > now:
        return _fail(f"{args.month} has not begun (it is {from_ms(now):%Y-%m-%d} UTC): "
                     "there is nothing to report yet", 2)
    url = args.prometheus
    if url is None:
        if not fleet.monitors:
            return _fail("the fleet declares no monitor: give --prometheus URL", 2)
        url = f"http://{fleet.monitors[0].address}:{PROMETHEUS_PORT}"
    try:
        prometheus = Prometheus(url)
        reports = sla_report.build(fleet, prometheus, start, end, now, args.guest)
    except sla_report.UnknownMachine as err:
        return _fail(str(err), 2)
    except PrometheusError as err:
        return _fail(str(err), 3)
    if args.format == "json":
        sys.stdout.write(sla_report.render_json(reports))
    elif args.format == "csv":
        sys.stdout.write(sla_report.render_csv(reports))
    else:
        sys.stdout.write(sla_report.render_table(reports, args.month, zone))
    if args.svg is not None:
        try:
            args.svg.write_text(sla_svg.render(reports, args.month, zone))
        except OSError as err:
            return _fail(f"cannot write {args.svg}: {err.strerror}", 2)
    return 0
