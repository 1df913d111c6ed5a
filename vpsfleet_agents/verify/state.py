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


def metrics(state_dir: Path) -> textfile.Gauges:
    """Both metrics of every guest verified on this host (one state file each)."""
    gauges = textfile.Gauges()
    success = gauges.family(
        "vpsfleet_backup_verify_last_success_timestamp_seconds",
        "Last time the guest's newest set passed verify-backups (download, sha256sum -c, "
        "decompression, load).",
        ["guest"],
    )
    ok = gauges.family(
        "vpsfleet_backup_verify_last_ok", "1 if the last verification of the guest passed.", ["guest"]
    )
    for path in sorted(state_dir.glob("*.json")):
        with contextlib.suppress(OSError, ValueError, KeyError, TypeError):
            data = json.loads(path.read_text())
            guest = str(data["guest"])
            last = float(data.get("last_success_ts", 0))
            success.add_metric([guest], last)
            ok.add_metric([guest], 1 if data.get("ok") else 0)
    return gauges


def record(args: argparse.Namespace, result: dict[str, Any]) -> None:
    state = Path(args.state_dir)
    previous: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        previous = json.loads((state / f"{args.guest}.json").read_text())
    result["last_success_ts"] = round(time.time(), 3) if result["ok"] else previous.get("last_success_ts", 0)
    write_atomic(state / f"{args.guest}.json", json.dumps(result, indent=2, sort_keys=True) + "\n")
    if args.textfile:
        textfile.write(args.textfile, metrics(state))
