"""vpsfleet-backup: the nightly backup agent of a guest (issue 6, promises M18-M24).

One set per night on the offsite FTP store, in a folder a customer opens with ordinary tools:

    /<customer>/<guest>/<YYYY-MM-DD>/www.tar.zst, db/<name>.sql.zst, MANIFEST.json, SHA256SUMS

(`.gz` instead of `.zst` where the offer keeps gzip; older sets may be either.)

The store chroots the guest's write account into `/<customer>/<guest>/`, so the agent works in
its home folder. Publishing is driven by this client, because a killed upload can look complete
to a server: everything goes to `<date>.partial/`, remote sizes (and the server's SHA-256 where
it offers one) are compared with SHA256SUMS, MANIFEST.json and SHA256SUMS go last, then the
folder is renamed. A folder named `YYYY-MM-DD` is therefore always a complete set.

Standard library only: it runs on Debian 12 guests where the vpsfleet package is not installed.
It drives tar, pigz (or gzip) / zstd, mariadb-dump (or mysqldump) and lftp, and checks the exit
code of every process of every pipeline (what `set -o pipefail` does for a shell).

The night's run (started inside the window) retries a failure of the store by itself until the
hard stop (M24, `retry` in the configuration; night.py); a run on request makes one attempt.

Exit codes: 0 published; 1 failed (the reason is in the status file and the metrics);
2 bad configuration; 75 another run holds the lock.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence

from vpsfleet_agents.backup.config import ConfigError, load_config
from vpsfleet_agents.backup.night import run_night
from vpsfleet_agents.backup.reasons import EXIT_CONFIG, EXIT_OK
from vpsfleet_agents.backup.restore import restore
from vpsfleet_agents.backup.restore_outcome import RESTORE_ROOT, RestoreRequest


def restore_request(args: argparse.Namespace) -> RestoreRequest:
    files = None if args.files is None else tuple(args.files)
    databases = None if args.databases is None else tuple(args.databases)
    if args.all_databases:
        databases = ()
    if files is None and databases is None:  # nothing named: the whole set
        files, databases = (), ()
    return RestoreRequest(
        set_name=args.set,
        files=files,
        databases=databases,
        target=args.target,
        in_place=args.in_place,
        mysql_defaults_file=args.mysql_defaults_file,
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vpsfleet-backup", description=__doc__.split("\n")[0])
    parser.add_argument("--config", default="/etc/vpsfleet-backup/config.json")
    parser.add_argument(
        "--no-deadline",
        action="store_true",
        help="a run on request outside the night window (one attempt, no hard stop)",
    )
    parser.add_argument("--check-config", action="store_true", help="parse the config and exit")
    commands = parser.add_subparsers(dest="command", metavar="restore")
    rest = commands.add_parser(
        "restore",
        help="restore a set or part of it (see docs/backup-restore.md)",
        description="Download a set, check it against SHA256SUMS and test every file, then apply it.",
    )
    rest.add_argument("--set", default="latest", help="YYYY-MM-DD or latest (default)")
    rest.add_argument(
        "--files", nargs="*", metavar="PATH", help="restore files: these paths, or all when none is given"
    )
    rest.add_argument(
        "--databases", nargs="*", metavar="NAME", help="restore databases: these, or all when none is given"
    )
    rest.add_argument("--all-databases", action="store_true", help="every database of the set")
    where = rest.add_mutually_exclusive_group()
    where.add_argument("--target", help=f"folder for the files (default {RESTORE_ROOT}/<set>/)")
    where.add_argument(
        "--in-place",
        action="store_true",
        help="over the original paths and into the live databases (default: beside them)",
    )
    rest.add_argument(
        "--mysql-defaults-file", help="client defaults of an account that may create and load databases"
    )
    rest.add_argument("--json", action="store_true", help="print the outcome as JSON on stdout")
    args = parser.parse_args(argv)
    try:
        config = load_config(args.config)
    except ConfigError as err:
        print(f"vpsfleet-backup: configuration: {err}", file=sys.stderr)
        return EXIT_CONFIG
    if args.check_config:
        return EXIT_OK
    os.umask(0o077)
    if args.command == "restore":
        result = restore(config, restore_request(args))
        if args.json:
            print(json.dumps(result.as_json(), sort_keys=True))
        stream = sys.stdout if result.reason == "ok" and not args.json else sys.stderr
        print(f"vpsfleet-backup restore: {result.reason}: {result.message}", file=stream)
        return result.exit_code
    outcome = run_night(config, use_deadline=not args.no_deadline)
    stream = sys.stdout if outcome.reason == "ok" else sys.stderr
    print(f"vpsfleet-backup: {outcome.reason}: {outcome.message}", file=stream)
    return outcome.exit_code
