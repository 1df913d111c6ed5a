"""vpsfleet-verify-backup: check a guest's newest backup set the way the terms ask the customer
to (M21), done for them by playbooks/verify-backups.yml.

With the CUSTOMER's read-only account (its password on stdin, never on a command line), over the
same verified-TLS lftp settings as the agent (whose modules it is built with): download the newest
published set of the guest, `sha256sum -c SHA256SUMS`, test-decompress every archive and list
it with tar, and load every dump into a scratch MariaDB.

A set is hostile input (the customer of an unmanaged VPS is root on the guest and holds the
guest's store password): nothing in it is ever executed, and every process that reads its
content runs sandboxed (docs/backup-verify.md, "What holds a hostile set"):

- each dump is screened first by the agent's own screen (DumpScreen, also used by its restore):
  what the mariadb client would run itself (`\\!`, `system`, `\\.`, `source`, `quit`, a
  `DELIMITER` other than mariadb-dump's own `;;` and `;`...), or anything that could make it read
  quoted data otherwise than the screen (a SQL mode it cannot follow, CALL, a routine naming
  sql_mode...), refuses the dump before anything loads;
- dumps load with `mariadb --sandbox --binary-mode --local-infile=0` (no shell escape, no file
  access, no client command at all) into a throwaway mariadbd of their own: no networking, no
  plugin loading, no file import or export, no symbolic links, its time and disk use bounded;
- decompressors, the client and the server run as an unprivileged account (--run-as, never
  root) with no new privileges, in a network namespace of their own where the host allows it;
- downloads go to a root-only folder, scratch databases to a folder whose parent is root's
  (mode 0710), never to a predictable path in a world-writable folder; nothing is followed
  through a symbolic link, and SHA256SUMS may only name files inside the set.

Prints one JSON object (guest, set, ok, reasons, checked files, sandbox); keeps it in --state-dir
and writes vpsfleet_backup_verify_last_success_timestamp_seconds{guest} for every guest verified
on this host into --textfile. Exit 0 OK, 1 FAIL, 3 no set on the store, 2 usage.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys

from vpsfleet_agents.verify.check import verify
from vpsfleet_agents.verify.state import record

EXIT_OK, EXIT_FAIL, EXIT_USAGE, EXIT_NO_SET = 0, 1, 2, 3


def account_name(text: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", text):
        raise argparse.ArgumentTypeError(f"{text!r} is not a guest or customer name")
    return text


def parser() -> argparse.ArgumentParser:
    cli = argparse.ArgumentParser(prog="vpsfleet-verify-backup", description=(__doc__ or "").split("\n")[0])
    cli.add_argument("--guest", required=True, type=account_name)
    cli.add_argument("--customer", required=True, type=account_name, help="the customer's read-only account")
    cli.add_argument("--host", required=True, help="the store, by a name or address its certificate carries")
    cli.add_argument("--port", type=int, default=21)
    cli.add_argument("--ca-file", required=True)
    cli.add_argument("--timeout", type=int, default=30)
    cli.add_argument("--work-dir", default="/var/lib/vpsfleet-backup-verify/work",
                     help="root's own folder (0700) for the download")  # fmt: skip
    cli.add_argument("--scratch-dir", default="/var/lib/vpsfleet-verify-scratch",
                     help="root's folder (0710, group of --run-as) for the scratch databases")  # fmt: skip
    cli.add_argument("--run-as", default="vpsfleet-verify", help="unprivileged account of the sandbox")
    cli.add_argument("--network-namespace", choices=["auto", "required", "off"], default="auto",
                     help="own network namespace for the sandbox (auto: if the host allows)")  # fmt: skip
    cli.add_argument("--load-timeout", type=float, default=3600.0, help="seconds one dump may take to load")
    cli.add_argument("--scratch-factor", type=int, default=4,
                     help="a scratch database may grow to this many times its dump (+256 MiB)")  # fmt: skip
    cli.add_argument("--state-dir", default="/var/lib/vpsfleet-backup-verify")
    cli.add_argument("--textfile", default="/var/lib/prometheus/node-exporter/vpsfleet_backup_verify.prom")
    cli.add_argument("--password-stdin", action="store_true", required=True)
    return cli


def main() -> int:
    args = parser().parse_args()
    password = sys.stdin.readline().strip("\r\n")
    if not password:
        print("vpsfleet-verify-backup: no password on stdin", file=sys.stderr)
        return EXIT_USAGE
    os.umask(0o077)
    result = verify(args, password)
    record(args, result)
    print(json.dumps(result, sort_keys=True))
    if result.get("no_set"):
        return EXIT_NO_SET
    return EXIT_OK if result["ok"] else EXIT_FAIL
