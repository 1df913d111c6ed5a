"""ProFTPD's quota tables (mod_quotatab_file): one hard group limit on uploaded bytes per
customer, and the tallies recomputed from what the disk holds.

The tables are written here rather than with ProFTPD's `ftpquota` (Debian's proftpd-core ships
it, a Perl script): it edits a table in place, one record per run (`--create-table` refuses a
table that exists, `--add-record` a record that exists, `--update-record` and `--delete-record`
one that does not), so bringing N customers' records in line takes up to N runs, each leaving a
state in between that a session starting then would read, and deciding whether anything changed
still means reading the tables. Writing each table whole, atomically, and only when its bytes
differ keeps a second run a no-op. The format is ftpquota's own ("Z81I1C1I1d3L3" and
"Z81I1d3L3", native byte order, no padding); the tests read the tables back with
`ftpquota --show-records`."""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from vpsfleet_agents.atomic import write_atomic
from vpsfleet_agents.store.tree import tree_size

LIMIT_MAGIC = 0x7626
TALLY_MAGIC = 0x7644
LIMIT_RECORD = struct.Struct("=81sIBI3d3I")
TALLY_RECORD = struct.Struct("=81sI3d3I")
GROUP_QUOTA = 30
HARD_LIMIT = 1
UNLIMITED = -1.0


def limit_table(customers: Iterable[dict[str, Any]]) -> bytes:
    """One hard group limit on uploaded bytes per customer (0: unlimited)."""
    data = struct.pack("=I", LIMIT_MAGIC)
    for customer in sorted(customers, key=lambda c: str(c["id"])):
        quota = float(customer.get("quota_bytes") or 0) or UNLIMITED
        data += LIMIT_RECORD.pack(
            customer["id"].encode(), GROUP_QUOTA, 0, HARD_LIMIT, quota, UNLIMITED, UNLIMITED, 0, 0, 0
        )
    return data


def tally_table(usage: dict[str, tuple[int, int]]) -> bytes:
    data = struct.pack("=I", TALLY_MAGIC)
    for name in sorted(usage):
        size, files = usage[name]
        data += TALLY_RECORD.pack(name.encode(), GROUP_QUOTA, float(size), 0.0, 0.0, files, 0, 0)
    return data


def read_tally(path: str) -> dict[str, tuple[int, int]]:
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return {}
    usage = {}
    for offset in range(4, len(data) - TALLY_RECORD.size + 1, TALLY_RECORD.size):
        name, _kind, size, _out, _xfer, files, _fo, _fx = TALLY_RECORD.unpack_from(data, offset)
        usage[name.rstrip(b"\0").decode()] = (int(size), files)
    return usage


def write_if_changed(path: str, data: bytes, dry_run: bool) -> bool:
    """Root-only tables: ProFTPD opens them before it drops its privileges."""
    try:
        if Path(path).read_bytes() == data:
            return False
    except FileNotFoundError:
        pass
    if not dry_run:
        os.makedirs(os.path.dirname(path), mode=0o750, exist_ok=True)
        write_atomic(path, data, 0o600)
    return True


def quota(config: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    """Writes the limit table, and the tally table from what the disk holds (deletions made
    here, by retention or erasure, are not seen by ProFTPD's own counting). A customer folder
    that is a link counts for nothing (never followed)."""
    settings = config.get("quota")
    if not settings:
        return {"changed": False, "usage": {}}
    usage = {c["id"]: tree_size(Path(config["root"]) / c["id"]) for c in config["customers"]}
    changed = write_if_changed(settings["limit_table"], limit_table(config["customers"]), dry_run)
    if read_tally(settings["tally_table"]) != usage:
        changed |= write_if_changed(settings["tally_table"], tally_table(usage), dry_run)
    return {"changed": changed, "usage": {k: v[0] for k, v in usage.items()}}
