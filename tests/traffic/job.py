"""Runs the very program the hypervisor role installs (the built zipapp) with a test config."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from tests.metric_samples import samples
from vpsfleet import agent_build

PROGRAM = next(a for a in agent_build.ARTIFACTS if a.name == "vpsfleet-traffic")

# Stands in for the MTA: keeps each message it is handed as a file.
SENDMAIL = """#!{python}
import pathlib, sys, time
folder = pathlib.Path({folder!r})
folder.mkdir(exist_ok=True)
(folder / f"{{time.time_ns()}}.eml").write_bytes(sys.stdin.buffer.read())
"""


@dataclass
class Job:
    work: Path

    @property
    def program(self) -> Path:
        path = self.work / PROGRAM.name
        if not path.exists():
            # Built into the test's folder: the same bytes `python -m vpsfleet.agent_build` writes.
            path.write_bytes(agent_build.build_bytes(PROGRAM))
        return path

    @property
    def state_dir(self) -> Path:
        return self.work / "state"

    @property
    def metrics_file(self) -> Path:
        return self.work / "metrics" / "vpsfleet_traffic.prom"

    def config(self, uri: str, guests: list[dict[str, Any]], **overrides: Any) -> Path:
        sendmail = self.work / "sendmail"
        sendmail.write_text(SENDMAIL.format(python=sys.executable, folder=str(self.work / "mails")))
        sendmail.chmod(0o755)
        data = {
            "libvirt_uri": uri,
            "time_zone": "Europe/Paris",
            "state_dir": str(self.state_dir),
            "metrics_file": str(self.metrics_file),
            "mail_from": "noc@provider.example",
            "operations_email": "ops@provider.example",
            "sendmail": str(sendmail),
            "guests": guests,
            **overrides,
        }
        path = self.work / "traffic.json"
        path.write_text(json.dumps(data))
        return path

    def run(self, *args: str) -> tuple[int, dict[str, Any]]:
        done = subprocess.run(
            [sys.executable, str(self.program), "--config", str(self.work / "traffic.json"), *args],
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.stdout.strip(), done.stderr
        return done.returncode, json.loads(done.stdout)

    def mails(self) -> list[Message]:
        folder = self.work / "mails"
        return (
            [message_from_bytes(p.read_bytes()) for p in sorted(folder.glob("*.eml"))]
            if folder.exists()
            else []
        )

    def metrics(self) -> dict[str, float]:
        """`name{labels}` -> value from the textfile the node exporter reads."""
        return samples(self.metrics_file.read_text())

    def state(self, cycle: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads((self.state_dir / f"{cycle}.json").read_text())
        return data
