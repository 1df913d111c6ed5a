"""Runs Ansible's own command-line tools against the inventory plugin, from the `ansible/` folder
(so that its ansible.cfg is the one in force, as for an operator). The checkout's `ansible/` is
the collection vpsfleet.platform through the link scripts/setup.d/25-collection-link.sh makes;
the session makes it first, so that these tests need no prior `scripts/setup.sh`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
BIN = Path(sys.executable).parent


def ansible_env() -> dict[str, str]:
    """The environment of an operator in ansible/: its ansible.cfg, the venv's tools first."""
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"), "NO_COLOR": "1"}
    env["PATH"] = f"{BIN}:{env.get('PATH', '')}"
    return env


@pytest.fixture(scope="session", autouse=True)
def collection_link() -> None:
    """ansible/ as vpsfleet.platform (.cache/collections/...), as scripts/setup.sh makes it."""
    subprocess.run(
        ["bash", str(REPO / "scripts" / "setup.d" / "25-collection-link.sh")],
        env={**os.environ, "VPSFLEET_ROOT": str(REPO)},
        check=True,
        capture_output=True,
    )


def run_inventory(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "ansible-inventory"), *args],
        cwd=ANSIBLE_DIR,
        env=ansible_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )


def _trusted(node: Any) -> Any:
    """The plugin's values are marked untrusted (never templated: a customer's name is data);
    `--list` shows them as {"__ansible_unsafe": value}. The tests compare the values."""
    if isinstance(node, dict):
        if set(node) == {"__ansible_unsafe"}:
            return node["__ansible_unsafe"]
        return {key: _trusted(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_trusted(value) for value in node]
    return node


def inventory_json(source: Path) -> dict[str, Any]:
    result = run_inventory("-i", str(source), "--list")
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = _trusted(json.loads(result.stdout))
    return data


@pytest.fixture(scope="session")
def inventory_of() -> Callable[[str], dict[str, Any]]:
    """`inventory_of("lab")`: the `ansible-inventory --list` of an environment, read once."""
    cache: dict[str, dict[str, Any]] = {}

    def get(env: str) -> dict[str, Any]:
        if env not in cache:
            cache[env] = inventory_json(REPO / "inventories" / env / "vpsfleet.yml")
        return cache[env]

    return get
