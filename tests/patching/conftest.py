"""Fixtures of the patching tests: systemd guests that really reboot (see guests.py)."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.patching.agents import build_agents
from tests.patching.guests import IMAGE, NOTICE, ROOT, Guest, podman, wait_booted


@pytest.fixture(scope="session")
def agents() -> dict[str, Path]:
    """The roles' programs, built from vpsfleet_agents (tests/patching/agents.py)."""
    return build_agents()


@pytest.fixture(scope="module")
def make_guests(tmp_path_factory: pytest.TempPathFactory, agents: dict[str, Path]) -> Iterator[Any]:
    """make_guests({"patching-roll-1": "always", ...}) -> {name: Guest}; removed afterwards."""
    if shutil.which("podman") is None:
        pytest.skip("podman is not installed (scripts/setup.sh)")
    subprocess.run(
        ["bash", str(ROOT / "scripts" / "build-test-image.sh")], check=True, capture_output=True, timeout=900
    )
    made: list[str] = []
    config = tmp_path_factory.mktemp("notice") / "notice.json"
    config.write_text(
        json.dumps(
            {
                "hostname": "guest",
                "customer_email": "c@customer.example.org",
                "operations_email": "ops@test.example.net",
                "mail_from": "ops@test.example.net",
                "window": "05:00",
                "notice_hours": 24,
                "templates": "/etc/vpsfleet/patching",
                "state_file": "/var/lib/vpsfleet/patching/notice.json",
            }
        ),
        encoding="utf-8",
    )

    def make(policies: dict[str, str]) -> dict[str, Guest]:
        guests = {}
        for name, policy in policies.items():
            podman("rm", "-f", name, check=False)
            identity = ["--name", name, "--hostname", name]
            podman("run", "-d", *identity, "--network", "none", f"--restart={policy}", IMAGE, "/sbin/init")
            made.append(name)
            guests[name] = Guest(name)
        for guest in guests.values():
            wait_booted(guest)
            guest.sh("mkdir -p /etc/vpsfleet/patching /usr/local/sbin")
            podman("cp", str(NOTICE), f"{guest.name}:/usr/local/sbin/vpsfleet-patch-notice")
            podman("cp", str(config), f"{guest.name}:/etc/vpsfleet/patching/notice.json")
        return guests

    yield make
    for name in made:
        podman("rm", "-f", "-t", "2", name, check=False)
