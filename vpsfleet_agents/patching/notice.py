"""vpsfleet-patch-notice: tell a managed VPS's customer before a reboot or a restart (M14).

Runs on the guest after every unattended upgrade (ExecStartPost of apt-daily-upgrade.service)
and from the patching role. When an update left the guest needing a reboot
(/run/reboot-required) or left services running deleted libraries (they need a restart), it
mails the customer, with a copy to operations, in the customer's language: what was updated,
why a reboot or restart is needed and when it will happen, which is the guest's maintenance
window at least `notice_hours` after the mail. It records the notice in a state file; the rolling
playbook reboots only a guest whose notice was sent and whose time has come
(`--reboot-allowed`), and a second run with nothing new sends nothing.

Prints one JSON object. Exit 0, or 1 when the mail could not be handed to sendmail (nothing is
recorded then, so the next run retries), or 2 on a bad configuration, or (with
`--reboot-allowed`) 3 when the reboot may not happen now. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from vpsfleet_agents import mail
from vpsfleet_agents.atomic import write_atomic
from vpsfleet_agents.patching.pending import reboot_packages, recent_upgrades, services_to_restart
from vpsfleet_agents.patching.render import Need, render
from vpsfleet_agents.patching.schedule import next_window, now_local

DESCRIPTION = "vpsfleet-patch-notice: tell a managed VPS's customer before a reboot or a restart (M14)."
REQUIRED = (
    "state_file",
    "templates",
    "hostname",
    "customer_email",
    "operations_email",
    "mail_from",
    "window",
    "notice_hours",
)


@dataclass(frozen=True)
class Paths:
    """Where the notice reads the guest; the environment moves them for tests."""

    config: Path
    run: Path
    proc: Path
    dpkg_log: Path

    @classmethod
    def from_env(cls) -> Paths:
        env = os.environ
        return cls(
            config=Path(env.get("VPSFLEET_PATCHING_CONFIG", "/etc/vpsfleet/patching/notice.json")),
            run=Path(env.get("VPSFLEET_PATCHING_RUN", "/run")),
            proc=Path(env.get("VPSFLEET_PATCHING_PROC", "/proc")),
            dpkg_log=Path(env.get("VPSFLEET_PATCHING_DPKG_LOG", "/var/log/dpkg.log")),
        )


def load_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    return data if isinstance(data, dict) else {}


def write_state(path: Path, data: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o750)
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True) + "\n", 0o644)


def reboot_allowed(run: Path, state: dict[str, Any], now: dt.datetime) -> tuple[bool, str]:
    """The rolling playbook's gate: a reboot only after its notice, and only once it is due."""
    if not (run / "reboot-required").exists() and not state.get("services"):
        return False, "no reboot or restart is needed"
    if state.get("status") != "sent":
        return False, "no notice was sent for the pending update (M14)"
    due = dt.datetime.fromisoformat(state["reboot_at"])
    if now < due:
        return False, f"the customer was told {state['reboot_at']}: not before"
    return True, f"notice sent {state['sent_at']} for {state['reboot_at']}"


def covered(state: dict[str, Any], reboot: bool, pkgs: list[str], services: list[str]) -> bool:
    """Whether the notice sent announced all that is needed now: no reboot it did not announce,
    no package or service it did not name."""
    return (
        (not reboot or bool(state.get("reboot")))
        and set(pkgs) <= set(state.get("reboot_packages") or [])
        and set(services) <= set(state.get("services") or [])
    )


def reboot_time(cfg: dict[str, Any], state: dict[str, Any], now: dt.datetime) -> dt.datetime:
    """The maintenance window at least `notice_hours` ahead; a newer update joins a pending
    notice and keeps its time if that is still far enough ahead."""
    earliest = now + dt.timedelta(hours=float(cfg["notice_hours"]))
    reboot_at = next_window(earliest, str(cfg["window"]))
    if state.get("status") == "sent":
        previous = dt.datetime.fromisoformat(state["reboot_at"])
        if previous >= earliest:
            reboot_at = previous
    return reboot_at


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument("--dry-run", action="store_true", help="say what would be sent; send nothing")
    parser.add_argument(
        "--reboot-allowed",
        action="store_true",
        help="say whether the reboot/restart may happen now (exit 0 yes, 3 no)",
    )
    parser.add_argument("--now", help="ISO time to act as if it were now (tests)")
    return parser.parse_args(argv)


def say(result: dict[str, Any], status: int = 0) -> int:
    print(json.dumps(result))
    return status


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    paths = Paths.from_env()
    try:
        cfg = load_json(paths.config)
    except json.JSONDecodeError as err:
        cfg = {"error": str(err)}
    missing = [key for key in REQUIRED if key not in cfg]
    if missing:
        return say({"error": f"bad configuration {paths.config}: missing {missing}"}, 2)
    state_path = Path(cfg["state_file"])
    now = now_local(args.now)
    state = load_json(state_path)

    if args.reboot_allowed:
        allowed, why = reboot_allowed(paths.run, state, now)
        return say({"allowed": allowed, "reason": why, "state": state}, 0 if allowed else 3)

    reboot, pkgs = reboot_packages(paths.run)
    services = services_to_restart(paths.proc) if cfg.get("restart_check", True) else []
    result: dict[str, Any] = {"reboot": reboot, "reboot_packages": pkgs, "services": services, "sent": False}
    if not reboot and not services:
        if state.get("status") == "sent":
            # The reboot or restart happened: close the notice, keep it for "why did it reboot?".
            state.update(status="done", done_at=now.isoformat(timespec="seconds"))
            if not args.dry_run:
                write_state(state_path, state)
        result["state"] = state.get("status", "none")
        return say(result)

    key = hashlib.sha256(json.dumps([reboot, pkgs, services]).encode()).hexdigest()[:16]
    if state.get("status") == "sent" and state.get("key") == key:
        result.update(state="unchanged", reboot_at=state["reboot_at"])
        return say(result)
    if state.get("status") == "sent" and covered(state, reboot, pkgs, services):
        # Part of what was announced already happened (a handler restarted a service): the
        # notice sent still tells the customer all that is left, at the time it gave.
        result.update(state="covered", reboot_at=state["reboot_at"])
        return say(result)

    reboot_at = reboot_time(cfg, state, now)
    # What was updated: since the last reboot or restart, else over the last days.
    since = (
        dt.datetime.fromisoformat(state["done_at"])
        if state.get("done_at")
        else now - dt.timedelta(days=int(cfg.get("lookback_days", 7)))
    )
    need = Need(reboot, pkgs, services, recent_upgrades(paths.dpkg_log, since, pkgs))
    msg = render(cfg, need, reboot_at)
    result.update(
        reboot_at=reboot_at.isoformat(timespec="minutes"),
        updated=need.updated,
        to=msg["To"],
        cc=msg["Cc"],
        subject=msg["Subject"],
    )
    if args.dry_run:
        result["state"] = "would-send"
        return say(result)
    handed = mail.send(msg, cfg.get("sendmail", mail.SENDMAIL))
    if not handed.ok:
        result.update(state="send-failed", error=handed.stderr)
        return say(result, 1)
    record = {
        "status": "sent",
        "key": key,
        "sent_at": now.isoformat(timespec="seconds"),
        "reboot_at": reboot_at.isoformat(timespec="minutes"),
        "reboot": reboot,
        "reboot_packages": pkgs,
        "services": services,
        "updated": need.updated,
        "to": msg["To"],
        "cc": msg["Cc"],
        "language": msg["Content-Language"],
        "message_id": msg["Message-ID"],
    }
    write_state(state_path, record)
    with (state_path.parent / "notices.log").open("a", encoding="utf-8") as log:
        log.write(json.dumps(record, sort_keys=True) + "\n")  # the answer to "why did it reboot?"
    result.update(state="sent", sent=True)
    return say(result)
