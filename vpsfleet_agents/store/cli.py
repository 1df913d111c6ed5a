"""vpsfleet-backup-store: the backup store's daily jobs (issue 6, promises M11, M18-M24).

    retention   per guest: quarantine the sets dated after tomorrow, remove the sets older than
                the guest's retention (never the newest, never below the minimum count), stale
                `.partial` folders older than a day; then recompute the quota tallies
    dead-man    check that every active guest has the set of today's night; mail operations
                and write node-exporter metrics
    erase       erase the trees of terminated guests whose termination date is reached (M11)
                and of guests the configuration does not name any more, logged to the journal
                and to an append-only log
    erase-stale --guest G: erase the tree a reused name G still holds (another identity's)
    identities  check and write the identity markers of the customers' and guests' trees; name
                the accounts a reused name may not get (the role leaves them out)
    quota       write the ProFTPD quota tables (mod_quotatab_file): one group limit per
                customer, tallies recomputed from the disk
    converge    erase + quota (what the Ansible role runs)
    daily       erase + retention (+ quota): the 03:30 timer; mails operations on problems
    hash-passwords  sha512-crypt hashes of the accounts given on stdin (the role's AuthUserFile)

Every command prints a JSON report on stdout (the journal keeps it). Exit codes: 0 done; 1 the
dead-man check found missing sets, or the daily job found problems it alerted for; 2 bad
configuration or a refused request (erasure of a guest that is not due).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from vpsfleet_agents.store.accounts import hash_passwords
from vpsfleet_agents.store.config import DEFAULT_PATH, Refused, load_config
from vpsfleet_agents.store.dead_man import dead_man
from vpsfleet_agents.store.erasure import erase, erase_stale
from vpsfleet_agents.store.identities import identities
from vpsfleet_agents.store.journal import PROGRAM
from vpsfleet_agents.store.quota import quota
from vpsfleet_agents.store.report import daily_report
from vpsfleet_agents.store.retention import retention

EXIT_OK = 0
EXIT_MISSING = 1
EXIT_REFUSED = 2
COMMANDS = ("retention", "dead-man", "quota", "converge", "daily", "hash-passwords", "identities")


def parser() -> argparse.ArgumentParser:
    parse = argparse.ArgumentParser(prog=PROGRAM, description=(__doc__ or "").split("\n")[0])
    parse.add_argument("--config", default=DEFAULT_PATH, help="`-`: stdin")
    parse.add_argument("--today", type=dt.date.fromisoformat, help="YYYY-MM-DD (tests)")
    parse.add_argument("--dry-run", action="store_true", help="report, change nothing")
    sub = parse.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        sub.add_parser(name)
    erase_cmd = sub.add_parser("erase")
    erase_cmd.add_argument("--guest", help="only this guest (refused unless due)")
    erase_cmd.add_argument("--by", default=f"{PROGRAM} erase", help="who asks (logged)")
    erase_cmd.add_argument(
        "--allow-mass-erasure",
        action="store_true",
        help="erase unknown trees even when they are most of the store's",
    )
    stale_cmd = sub.add_parser("erase-stale")
    stale_cmd.add_argument("--guest", required=True, help="the reused name whose former tree goes")
    stale_cmd.add_argument("--by", default=f"{PROGRAM} erase-stale", help="who asks (logged)")
    return parse


def converge(
    config: dict[str, Any], today: dt.date, daily: bool, dry_run: bool
) -> tuple[dict[str, Any], int]:
    """`converge` (the role's: erase + quota) and `daily` (the timer's: erase + retention +
    quota, then its report): the report and the exit code."""
    report: dict[str, Any] = {}
    erased = erase(config, today, by="daily job" if daily else "ansible role backup_store", dry_run=dry_run)
    report["erased"] = erased["erased"]
    problems = erased["problems"]
    changed = erased["changed"]
    if daily:
        kept = retention(config, today, dry_run=dry_run)
        report["removed"] = kept["removed"]
        report["quarantined"] = kept["quarantined"]
        problems += kept["problems"]
        changed |= kept["changed"]
    quotas = quota(config, dry_run)
    report["quota"] = quotas
    report["problems"] = problems
    report["changed"] = changed or quotas["changed"]
    alerted = daily and daily_report(config, today, problems, dry_run)
    return report, EXIT_MISSING if alerted else EXIT_OK


def run(args: argparse.Namespace, today: dt.date) -> tuple[dict[str, Any], int]:
    """One command on the store's configuration: its report and exit code."""
    config = load_config(args.config)
    report: dict[str, Any] = {"command": args.command, "today": today.isoformat()}
    code = EXIT_OK
    if args.command == "erase":
        report.update(erase(config, today, args.guest, args.by, args.dry_run, args.allow_mass_erasure))
    elif args.command == "erase-stale":
        report.update(erase_stale(config, args.guest, args.by, args.dry_run))
    elif args.command == "identities":
        report.update(identities(config, args.dry_run))
    elif args.command == "retention":
        report.update(retention(config, today, dry_run=args.dry_run))
        report["quota"] = quota(config, args.dry_run)
    elif args.command == "quota":
        report.update(quota(config, args.dry_run))
    elif args.command in ("converge", "daily"):
        done, code = converge(config, today, args.command == "daily", args.dry_run)
        report.update(done)
    elif args.command == "dead-man":
        report.update(dead_man(config, today))
        code = EXIT_MISSING if report["missing"] else EXIT_OK
    return report, code


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    today = args.today or dt.date.today()
    os.umask(0o027)
    try:
        if args.command == "hash-passwords":  # {name: {password, salt}} on stdin; no configuration
            print(json.dumps(hash_passwords(json.load(sys.stdin)), sort_keys=True))
            return EXIT_OK
        report, code = run(args, today)
    except Refused as err:
        print(f"{PROGRAM}: refused: {err}", file=sys.stderr)
        return EXIT_REFUSED
    print(json.dumps(report, sort_keys=True))
    return code
