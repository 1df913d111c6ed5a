"""Systemd guests for the patching tests: podman containers of the test image, with no network
at all, that ansible-playbook reaches through the podman connection and that really reboot:
systemd's reboot ends the container and podman's restart policy starts it again, with a fresh
/run and a new PID 1, the way a VM boots (a guest made with restart policy `no` stays down: the
guest that does not come back)."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
IMAGE = "localhost/vpsfleet-debian12:latest"
# Built from vpsfleet_agents.patching.notice (tests/patching/agents.py, python -m vpsfleet.agent_build).
NOTICE = ROOT / "ansible" / "roles" / "patching" / "files" / "vpsfleet-patch-notice"


def podman(*args: str, check: bool = True, timeout: int = 120) -> str:
    done = subprocess.run(["podman", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(f"podman {' '.join(args)}: {done.stderr}")
    return done.stdout.strip()


@dataclass
class Guest:
    name: str

    def sh(self, script: str, check: bool = True) -> str:
        return podman("exec", self.name, "bash", "-c", script, check=check)

    def pid1_start(self) -> str:
        return self.sh("cut -d' ' -f22 /proc/1/stat")

    def running(self) -> bool:
        return podman("inspect", "-f", "{{.State.Running}}", self.name, check=False) == "true"

    def announce(self, reboot_at: dt.datetime, sent: bool = True) -> None:
        """A pending reboot, and (when `sent`) the notice the role sent 24 h before it."""
        self.sh("touch /run/reboot-required; echo linux-image-demo > /run/reboot-required.pkgs")
        if not sent:
            self.sh("rm -f /var/lib/vpsfleet/patching/notice.json")
            return
        state = {
            "status": "sent",
            "key": "test",
            "reboot": True,
            "reboot_packages": ["linux-image-demo"],
            "services": [],
            "sent_at": (reboot_at - dt.timedelta(hours=24)).isoformat(timespec="seconds"),
            "reboot_at": reboot_at.isoformat(timespec="minutes"),
        }
        self.sh(
            f"mkdir -p /var/lib/vpsfleet/patching && cat > "
            f"/var/lib/vpsfleet/patching/notice.json <<'EOF'\n{json.dumps(state)}\nEOF"
        )


def wait_booted(guest: Guest, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        state = podman("exec", guest.name, "systemctl", "is-system-running", check=False)
        if state in ("running", "degraded"):
            return
        time.sleep(1)
    raise AssertionError(f"{guest.name} did not boot: {state}")


@dataclass
class PlaybookRun:
    rc: int
    output: str
    summary_dir: Path

    def results(self) -> dict[str, dict[str, Any]]:
        return {
            path.stem: json.loads(path.read_text(encoding="utf-8"))
            for path in self.summary_dir.glob("*.json")
            if path.name != "summary.json"
        }


def run_playbook(
    tmp_path: Path,
    playbook: str,
    hosts: list[str],
    host_vars: dict[str, dict[str, Any]] | None = None,
    check: bool = False,
    **extra: Any,
) -> PlaybookRun:
    """Runs ansible/playbooks/PLAYBOOK on the given containers (in that order), as managed,
    active guests."""
    members = {h: (host_vars or {}).get(h, {}) for h in hosts}
    inventory = {
        "all": {
            "children": {
                "guests": {"hosts": members},
                "managed": {"hosts": {h: {} for h in hosts}},
                "active": {"hosts": {h: {} for h in hosts}},
            },
            "vars": {
                "ansible_connection": "containers.podman.podman",
                "ansible_python_interpreter": "/usr/bin/python3",
            },
        }
    }
    tmp_path.mkdir(parents=True, exist_ok=True)
    inventory_file = tmp_path / "inventory.json"
    inventory_file.write_text(json.dumps(inventory), encoding="utf-8")
    summary = tmp_path / "summary"
    env = {
        **os.environ,
        "ANSIBLE_CONFIG": str(ROOT / "ansible" / "ansible.cfg"),
        "ANSIBLE_NOCOLOR": "true",
        "PATCH_SUMMARY_DIR": str(summary),
    }
    argv = [
        str(ROOT / ".venv" / "bin" / "ansible-playbook"),
        "-i",
        str(inventory_file),
        str(ROOT / "ansible" / "playbooks" / playbook),
        "-e",
        json.dumps(extra),
    ]
    if check:
        argv.append("--check")
    done = subprocess.run(
        argv, env=env, capture_output=True, text=True, timeout=900, check=False, cwd=ROOT / "ansible"
    )
    return PlaybookRun(done.returncode, done.stdout + done.stderr, summary)


def run_patch(
    tmp_path: Path,
    hosts: list[str],
    host_vars: dict[str, dict[str, Any]] | None = None,
    check: bool = False,
    **extra: Any,
) -> PlaybookRun:
    return run_playbook(tmp_path, "patch.yml", hosts, host_vars, check, **extra)
