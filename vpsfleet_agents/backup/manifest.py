"""MANIFEST.json: what a set holds and how to restore it, for a person as much as for a program."""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Sequence
from typing import Any

from vpsfleet_agents.backup.config import Config

AGENT_VERSION = "1.0"
MANIFEST_FORMAT = 1


def build_manifest(
    config: Config,
    night: dt.date,
    started: dt.datetime,
    finished: dt.datetime,
    entries: Sequence[dict[str, Any]],
    tools: dict[str, str],
    warnings: Sequence[str],
) -> dict[str, Any]:
    """What the set holds and how to restore it, for a person as much as for a program."""
    ext = ".gz" if config.compression == "gzip" else ".zst"
    unpack = "gunzip -c" if config.compression == "gzip" else "zstd -dc"
    # Through a pipe: any tar reads it (the tar of macOS, for one, has no zstd of its own).
    files = f"{unpack} www.tar{ext} | tar -xf - -C /   (or -C /some/folder to look first)"
    return {
        "format": MANIFEST_FORMAT,
        "customer": config.customer,
        "guest": config.guest,
        "night": night.isoformat(),
        "started": started.isoformat(timespec="seconds"),
        "finished": finished.isoformat(timespec="seconds"),
        "agent": f"vpsfleet-backup {AGENT_VERSION}",
        "host": socket.gethostname(),
        "compression": config.compression,
        "scope": {
            "paths": list(config.paths),
            "excludes": list(config.excludes),
            "databases": config.databases if isinstance(config.databases, str) else list(config.databases),
        },
        "files": list(entries),
        "tools": tools,
        "warnings": list(warnings),
        "restore": {
            "check": "sha256sum -c SHA256SUMS",
            "files": files,
            "database": f"{unpack} db/NAME.sql{ext} | mariadb --sandbox NAME   (create NAME first)",
        },
    }
