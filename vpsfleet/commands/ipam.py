"""`vpsfleet ipam allocate|release|free`: fixed IPv4 addresses, written into the fleet file."""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from typing import Any

from vpsfleet.commands.fleet import add_today
from vpsfleet.environments import display_path, fleet_path
from vpsfleet.ipam import AllocationError, allocate, free_addresses, release
from vpsfleet.loader import FleetInvalid, load_fleet


def register(subparsers: Any) -> None:
    ipam = subparsers.add_parser("ipam", help="allocate, release and list IPv4 addresses")
    verbs = ipam.add_subparsers(dest="verb", required=True, metavar="VERB")

    alloc = verbs.add_parser("allocate", help="give a guest the lowest free address of its "
                             "datacenter and write it into the fleet file")
    alloc.add_argument("env")
    alloc.add_argument("name", help="a guest or dedicated server without an address")
    add_today(alloc)
    alloc.set_defaults(run=run_allocate)

    rel = verbs.add_parser("release", help="put a terminated guest's address in quarantine")
    rel.add_argument("env")
    rel.add_argument("name")
    add_today(rel)
    rel.set_defaults(run=run_release)

    free = verbs.add_parser("free", help="list the free addresses of a datacenter")
    free.add_argument("env")
    free.add_argument("datacenter")
    free.add_argument("--limit", type=int, default=0, help="list at most N (default: all)")
    add_today(free)
    free.set_defaults(run=run_free)


def _edit(args: argparse.Namespace, action: Any, verb: str) -> int:
    path = fleet_path(args.env)
    try:
        address = action(path, args.name, today=args.today)
    except FleetInvalid as err:
        raise FleetInvalid(display_path(path), err.problems) from None
    except AllocationError as err:
        print(f"vpsfleet: {err}; {display_path(path)} is unchanged", file=sys.stderr)
        return 1
    print(f"{args.name}: {verb} {address} in {display_path(path)}; commit it for review")
    return 0


def run_allocate(args: argparse.Namespace) -> int:
    return _edit(args, allocate, "allocated")


def run_release(args: argparse.Namespace) -> int:
    return _edit(args, release, "released")


def run_free(args: argparse.Namespace) -> int:
    path = fleet_path(args.env)
    fleet = load_fleet(path, today=args.today)
    today = args.today or dt.date.today()
    count = 0
    try:
        for pool, address in free_addresses(fleet, args.datacenter, today):
            print(f"{address}\t{pool.name}")
            count += 1
            if args.limit and count >= args.limit:
                break
    except AllocationError as err:
        print(f"vpsfleet: {err}", file=sys.stderr)
        return 1
    if count == 0:
        print(f"vpsfleet: no free address in datacenter {args.datacenter}", file=sys.stderr)
        return 1
    return 0
