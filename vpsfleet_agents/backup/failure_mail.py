"""Mails operations that a guest's backup run failed (M24), from systemd's OnFailure.

The mail says which guest, why (the exit reason and message of the agent's status file) and
ends with the failed run's journal lines, and leaves through the local MTA (postfix, a null
client of the provider's relay), which queues it when the relay is away.
"""

from __future__ import annotations

import argparse
import json
import socket
import subprocess
import sys
from email.message import EmailMessage
from typing import Any

from vpsfleet_agents.mail import send


def read_status(path: str) -> dict[str, Any]:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        return {"reason": "unknown", "message": f"no status file ({err})"}
    return data if isinstance(data, dict) else {}


def journal(unit: str, lines: int) -> str:
    """The last lines of the unit's latest run (its invocation), or of the unit."""
    invocation = subprocess.run(
        ["systemctl", "show", "--property=InvocationID", "--value", unit],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    match = [f"_SYSTEMD_INVOCATION_ID={invocation}"] if invocation else [f"--unit={unit}"]
    out = subprocess.run(
        ["journalctl", "--no-pager", "--output=short-iso", f"--lines={lines}", *match],
        capture_output=True,
        text=True,
        check=False,
    )
    return out.stdout.strip() or out.stderr.strip() or "(no journal lines)"


def compose(to: str, guest: str, status: dict[str, Any], log: str) -> EmailMessage:
    reason = str(status.get("reason", "unknown"))
    last = status.get("last_success") or {}
    mail = EmailMessage()
    mail["To"] = to
    mail["Subject"] = f"[vpsfleet backup] {guest}: backup failed ({reason})"
    mail["X-Vpsfleet-Backup-Guest"] = guest
    mail["X-Vpsfleet-Backup-Reason"] = reason
    kept = (
        f"its last good set ({last['set']}) is untouched on the store."
        if last.get("set")
        else "no set of this guest has been published yet."
    )
    opening = f"The nightly backup of {guest} failed; {kept}"
    if reason == "future_sets":
        future = ", ".join(str(s) for s in status.get("future_sets") or [])
        opening = (
            f"The nightly backup of {guest} published its set ({last.get('set', '?')}), but its folder"
            f" on the store holds sets dated after tomorrow ({future}): a clock ran ahead (this"
            " guest's, when it named them) or someone put them there. They are kept, never deleted"
            " by retention nor taken for the newest set. Check the guest's clock (timedatectl),"
            " then remove or rename them on the store."
        )
    tries = [a for a in status.get("night_attempts") or [] if isinstance(a, dict)]
    attempts = (
        f"{len(tries)} this night ({', '.join(str(a.get('reason', '?')) for a in tries)}); the"
        " agent retries only failures of the store, inside the window (M24)"
        if tries
        else "1"
    )
    mail.set_content(
        "\n".join(
            [
                opening,
                "",
                f"Guest:        {guest} ({socket.getfqdn()})",
                f"Reason:       {reason}",
                f"Message:      {status.get('message', '')}",
                f"Started:      {status.get('started', '?')}",
                f"Finished:     {status.get('finished', '?')}",
                f"Last success: {last.get('set', 'none')} (finished {last.get('finished', '-')})",
                f"Attempts:     {attempts}",
                "",
                "Redo it once the cause is fixed (M24): systemctl start vpsfleet-backup.service",
                "or playbooks/backup-now.yml. The reasons are listed in docs/backup-agent.md.",
                "",
                "Last journal lines of the run:",
                "",
                log,
            ]
        )
        + "\n"
    )
    return mail


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="vpsfleet-backup-failure-mail", description=__doc__.split("\n")[0])
    parser.add_argument("--to", required=True)
    parser.add_argument("--guest", required=True)
    parser.add_argument("--status", default="/var/lib/vpsfleet-backup/status.json")
    parser.add_argument("--unit", default="vpsfleet-backup.service")
    parser.add_argument("--lines", type=int, default=40)
    parser.add_argument("--sendmail", default="/usr/sbin/sendmail")
    args = parser.parse_args(argv)
    message = compose(args.to, args.guest, read_status(args.status), journal(args.unit, args.lines))
    handed = send(message, args.sendmail)
    if not handed.ok:
        sys.stderr.write(handed.stderr)
        print(f"sendmail exited {handed.returncode}", file=sys.stderr)
    return handed.returncode
