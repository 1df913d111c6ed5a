"""Backup sets on the store: their names, their checksums, and which ones retention removes.

Shared by the guest's agent (its own folder) and the store's daily job (every guest's folder).
Folder names on the store are written by guests: nothing here raises on a strange one.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Iterable
from pathlib import Path

# A published set's folder: exactly YYYY-MM-DD in ASCII digits (fullmatch; `\d` would take other
# scripts' digits and `$` a trailing newline).
SET_NAME = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")
# The files a set holds (MANIFEST.json's paths): database_file_name() makes the dumps' names.
SET_FILE = r"www\.tar\.(gz|zst)|db/[A-Za-z0-9_%-][A-Za-z0-9_.%-]*\.sql\.(gz|zst)"
CHUNK = 1 << 20


def set_date(name: object) -> dt.date | None:
    """The night of a published set from its folder name (exactly YYYY-MM-DD, ASCII digits, a
    real date); None for anything else, never an exception: folder names on the store are
    written by guests."""
    if not isinstance(name, str):
        return None
    match = SET_NAME.fullmatch(name)
    if not match:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def published_sets(names: Iterable[str]) -> list[str]:
    """Folder names that are complete sets (never `.partial`), oldest first."""
    return sorted({n for n in names if set_date(n) is not None})


def future_sets(names: Iterable[str], today: dt.date) -> list[str]:
    """Sets dated after tomorrow: a clock ran ahead when they were named (or someone planted
    them). They are never deleted by retention nor counted as the newest set; they are reported
    (the run's reason `future_sets`, the store's quarantine)."""
    horizon = today + dt.timedelta(days=1)
    return [n for n in published_sets(names) if (set_date(n) or today) > horizon]


def select_expired(names: Iterable[str], today: dt.date, keep_days: int, minimum_sets: int) -> list[str]:
    """The sets retention removes (oldest first): older than `keep_days` nights, judged by folder
    name only, with four guards against a clock that jumps or a guest that stopped:

    - a set dated after `today + 1 day` is never selected and never counts as the newest;
    - the day judged from is `min(today, newest set + 1 day)`: a clock that jumps forward (or a
      guest whose backups stopped) does not age the sets that are there;
    - never so many that fewer than `minimum_sets` (not future-dated) sets remain;
    - never the newest set.

    Shared with the store's daily job."""
    sets = published_sets(names)
    horizon = today + dt.timedelta(days=1)
    present = [n for n in sets if (set_date(n) or horizon) <= horizon]
    if not present:
        return []
    newest = set_date(present[-1])
    assert newest is not None
    judged = min(today, newest + dt.timedelta(days=1))
    oldest_kept = judged - dt.timedelta(days=keep_days - 1)
    candidates = [n for n in present[:-1] if (set_date(n) or judged) < oldest_kept]
    room = max(0, len(present) - max(minimum_sets, 1))
    return candidates[:room]


def stale_folders(names: Iterable[str]) -> list[str]:
    """Leftovers of an interrupted run: unpublished `.partial` folders, and `.superseded`
    folders (a same-day set being replaced) whose replacement is in place."""
    names = set(names)
    stale = [n for n in names if n.endswith(".partial")]
    stale += [n for n in names if n.endswith(".superseded") and n.removesuffix(".superseded") in names]
    return sorted(stale)


def orphaned_superseded(names: Iterable[str]) -> list[str]:
    """`.superseded` folders whose replacement never arrived: they are renamed back."""
    names = set(names)
    return sorted(
        n for n in names if n.endswith(".superseded") and n.removesuffix(".superseded") not in names
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def format_sha256sums(sums: dict[str, str]) -> str:
    """`sha256sum` text format (two spaces: binary-safe on every platform), sorted by name."""
    return "".join(f"{sums[name]}  {name}\n" for name in sorted(sums))


def parse_sha256sums(text: str) -> dict[str, str]:
    sums: dict[str, str] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"([0-9a-f]{64}) [ *](.+)", line.strip())
        if not match:
            raise ValueError(f"not a sha256sum line: {line!r}")
        sums[match[2]] = match[1]
    return sums


def database_file_name(name: str, extension: str) -> str:
    """A database name as a file name: percent-encode anything unusual (MariaDB allows it)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", lambda m: "".join(f"%{b:02X}" for b in m[0].encode()), name)
    if safe.startswith("."):
        safe = "%2E" + safe[1:]
    return f"db/{safe}.sql{extension}"
