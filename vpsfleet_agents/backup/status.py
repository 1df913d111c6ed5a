"""The run's status file and its metrics for the node exporter's textfile collector."""

from __future__ import annotations

import json
import time
from typing import Any

from vpsfleet_agents import textfile
from vpsfleet_agents.atomic import write_atomic
from vpsfleet_agents.backup.config import Config
from vpsfleet_agents.backup.reasons import REASONS


def read_status(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


def metrics(status: dict[str, Any]) -> textfile.Gauges:
    """The metrics of the status file's content."""
    last = status.get("last_success") or {}
    reason = status.get("reason", "error")
    state = status.get("state")
    gauges = textfile.Gauges()
    for name, text, value in (
        ("last_success_timestamp_seconds", "End of the last published set.", last.get("finished_ts", 0)),
        ("last_success_bytes", "Bytes of the last published set.", last.get("bytes", 0)),
        (
            "last_run_timestamp_seconds",
            "End (or start, while running) of the last run.",
            status.get("updated_ts", 0),
        ),
        ("last_run_success", "1 if the last run published its set.", 1 if state == "ok" else 0),
        ("running", "1 while a run is in progress (or was killed with -9).", 1 if state == "running" else 0),
        ("last_run_duration_seconds", "Duration of the last run.", status.get("duration_seconds", 0)),
        ("last_run_bytes", "Bytes produced by the last run.", status.get("bytes", 0)),
        (
            "future_sets",
            "Sets on the store dated after tomorrow (a clock ran ahead).",
            len(status.get("future_sets") or []),
        ),
        # M24: the agent retries a failed night itself; each attempt is visible here.
        (
            "last_run_attempt",
            "Which attempt of its night the last run was (1: the first).",
            status.get("attempt", 1),
        ),
        (
            "night_attempts",
            "Attempts finished so far for the last run's night.",
            len(status.get("night_attempts") or []),
        ),
        (
            "next_attempt_timestamp_seconds",
            "When the night is retried (0: none pending).",
            status.get("next_attempt_ts") or 0,
        ),
    ):
        gauges.single(f"vpsfleet_backup_{name}", text, value)
    reasons = gauges.family(
        "vpsfleet_backup_last_run_exit_reason", "Why the last run ended (1 for its reason).", ["reason"]
    )
    for r in REASONS:
        reasons.add_metric([r], 1 if r == reason else 0)
    return gauges


def record(config: Config, status: dict[str, Any]) -> None:
    status["updated_ts"] = round(time.time(), 3)
    write_atomic(config.status_file, json.dumps(status, indent=2, sort_keys=True) + "\n")
    if config.textfile:
        textfile.write(config.textfile, metrics(status))
