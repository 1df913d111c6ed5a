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


def metric_lines(status: dict[str, Any]) -> list[str]:
    """The metrics of the status file's content, one line each (Prometheus text format)."""
    last = status.get("last_success") or {}
    reason = status.get("reason", "error")
    lines = [
        "# HELP vpsfleet_backup_last_success_timestamp_seconds End of the last published set.",
        "# TYPE vpsfleet_backup_last_success_timestamp_seconds gauge",
        f"vpsfleet_backup_last_success_timestamp_seconds {last.get('finished_ts', 0)}",
        "# HELP vpsfleet_backup_last_success_bytes Bytes of the last published set.",
        "# TYPE vpsfleet_backup_last_success_bytes gauge",
        f"vpsfleet_backup_last_success_bytes {last.get('bytes', 0)}",
        "# HELP vpsfleet_backup_last_run_timestamp_seconds End (or start, while running) of the last run.",
        "# TYPE vpsfleet_backup_last_run_timestamp_seconds gauge",
        f"vpsfleet_backup_last_run_timestamp_seconds {status.get('updated_ts', 0)}",
        "# HELP vpsfleet_backup_last_run_success 1 if the last run published its set.",
        "# TYPE vpsfleet_backup_last_run_success gauge",
        f"vpsfleet_backup_last_run_success {1 if status.get('state') == 'ok' else 0}",
        "# HELP vpsfleet_backup_running 1 while a run is in progress (or was killed with -9).",
        "# TYPE vpsfleet_backup_running gauge",
        f"vpsfleet_backup_running {1 if status.get('state') == 'running' else 0}",
        "# HELP vpsfleet_backup_last_run_duration_seconds Duration of the last run.",
        "# TYPE vpsfleet_backup_last_run_duration_seconds gauge",
        f"vpsfleet_backup_last_run_duration_seconds {status.get('duration_seconds', 0)}",
        "# HELP vpsfleet_backup_last_run_bytes Bytes produced by the last run.",
        "# TYPE vpsfleet_backup_last_run_bytes gauge",
        f"vpsfleet_backup_last_run_bytes {status.get('bytes', 0)}",
        "# HELP vpsfleet_backup_future_sets Sets on the store dated after tomorrow (a clock ran ahead).",
        "# TYPE vpsfleet_backup_future_sets gauge",
        f"vpsfleet_backup_future_sets {len(status.get('future_sets') or [])}",
        # M24: the agent retries a failed night itself; each attempt is visible here.
        "# HELP vpsfleet_backup_last_run_attempt Which attempt of its night the last run was (1: the first).",
        "# TYPE vpsfleet_backup_last_run_attempt gauge",
        f"vpsfleet_backup_last_run_attempt {status.get('attempt', 1)}",
        "# HELP vpsfleet_backup_night_attempts Attempts finished so far for the last run's night.",
        "# TYPE vpsfleet_backup_night_attempts gauge",
        f"vpsfleet_backup_night_attempts {len(status.get('night_attempts') or [])}",
        "# HELP vpsfleet_backup_next_attempt_timestamp_seconds When the night is retried (0: none pending).",
        "# TYPE vpsfleet_backup_next_attempt_timestamp_seconds gauge",
        f"vpsfleet_backup_next_attempt_timestamp_seconds {status.get('next_attempt_ts') or 0}",
        "# HELP vpsfleet_backup_last_run_exit_reason Why the last run ended (1 for its reason).",
        "# TYPE vpsfleet_backup_last_run_exit_reason gauge",
    ]
    lines += [
        f"vpsfleet_backup_last_run_exit_reason{textfile.labels(reason=r)} {1 if r == reason else 0}"
        for r in REASONS
    ]
    return lines


def render_metrics(status: dict[str, Any]) -> str:
    """Prometheus textfile-collector format, from the status file's content."""
    return "\n".join(metric_lines(status)) + "\n"


def record(config: Config, status: dict[str, Any]) -> None:
    status["updated_ts"] = round(time.time(), 3)
    write_atomic(config.status_file, json.dumps(status, indent=2, sort_keys=True) + "\n")
    if config.textfile:
        textfile.write(config.textfile, metric_lines(status))
