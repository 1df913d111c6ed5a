"""What the verification keeps: one JSON file per guest, and the metrics for the node exporter."""

from __future__ import annotations

import argparse
import contextlib
import json
import time
from pathlib import Path
from typing import Any

from vpsfleet_agents import textfile
from vpsfleet_agents.atomic import write_atomic


def metric_lines(state_dir: Path) -> list[str]:
    """Both metrics of every guest verified on this host (one state file each)."""
    lines = [
        "# HELP vpsfleet_backup_verify_last_success_timestamp_seconds Last time the guest's newest "
        "set passed verify-backups (download, sha256sum -c, decompression, load).",
        "# TYPE vpsfleet_backup_verify_last_success_timestamp_seconds gauge",
    ]
    lines_ok = [
        "# HELP vpsfleet_backup_verify_last_ok 1 if the last verification of the guest passed.",
        "# TYPE vpsfleet_backup_verify_last_ok gauge",
    ]
    for path in sorted(state_dir.glob("*.json")):
        with contextlib.suppress(OSError, ValueError):
            data = json.loads(path.read_text())
            guest = textfile.labels(guest=str(data["guest"]))
            success = data.get("last_success_ts", 0)
            lines.append(f"vpsfleet_backup_verify_last_success_timestamp_seconds{guest} {success}")
            lines_ok.append(f"vpsfleet_backup_verify_last_ok{guest} {1 if data.get('ok') else 0}")
    return lines + lines_ok


def record(args: argparse.Namespace, result: dict[str, Any]) -> None:
    state = Path(args.state_dir)
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads((state / f"{args.guest}.json").read_text())
    result["last_success_ts"] = round(time.time(), 3) if result["ok"] else previous.get("last_success_ts", 0)
    write_atomic(state / f"{args.guest}.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    if args.textfile:
        textfile.write(args.textfile, metric_lines(state))
