"""Role `edge_router`, run for real by `ansible-playbook` inside a network namespace of its own
(`edge-role-*`, connection local), so that its sysctl and its nftables load touch only that
namespace; the files go to a temporary folder. The package and the boot unit (tags
`edge_router_install`, `edge_router_boot`: apt and systemd, neither usable here) are skipped.

Converge, idempotence, check mode (reports the change, loads nothing), a fleet edit reaching the
router, and a ruleset nft refuses leaving the router as it was.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.edge.netns import run, usable
from vpsfleet.cli import main

REPO = Path(__file__).resolve().parents[2]
ANSIBLE_DIR = REPO / "ansible"
BIN = Path(sys.executable).parent
EXAMPLE = REPO / "inventories" / "example-production" / "fleet.yml"
NOW = "2026-12-04T10:00:00Z"

pytestmark = pytest.mark.skipif(usable() is not None or not (BIN / "ansible-playbook").exists(),
                                reason=usable() or "needs ansible-playbook")

PLAY = """\
- name: Edge router
  hosts: localhost
  connection: local
  gather_facts: false
  roles:
    - role: edge_router
"""


@pytest.fixture
def router(tmp_path: Path) -> Iterator[str]:
    ns = f"edge-role-{os.getpid() % 100000}"
    run(["ip", "netns", "add", ns])
    try:
        yield ns
    finally:
        run(["ip", "netns", "del", ns], check=False)


def playbook(ns: str, tmp_path: Path, fleet: Path, *extra: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "play.yml").write_text(PLAY)
    variables = {
        "edge_router_fleet": str(fleet), "edge_router_datacenter": "par1",
        "edge_router_vpsfleet": str(BIN / "vpsfleet"), "edge_router_now": NOW,
        "edge_router_ruleset_path": str(tmp_path / "etc" / "edge.nft"),
        "edge_router_sysctl_file": str(tmp_path / "sysctl.conf"),
        "edge_router_unit_dir": str(tmp_path),
        "ansible_python_interpreter": sys.executable,
    }
    args = [f"{key}={value}" for key, value in variables.items()]
    env = {**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_DIR / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(ANSIBLE_DIR / "roles"), "NO_COLOR": "1",
           "PATH": f"{BIN}:{os.environ['PATH']}"}
    cmd = ["nsenter", f"--net=/run/netns/{ns}", str(BIN / "ansible-playbook"), "-i", "localhost,",
           str(tmp_path / "play.yml"), "--skip-tags", "edge_router_install,edge_router_boot",
           *[x for arg in args for x in ("-e", arg)], *extra]
    return subprocess.run(cmd, cwd=ANSIBLE_DIR, env=env, capture_output=True, text=True,
                          check=False)


def changed(done: subprocess.CompletedProcess[str]) -> int:
    assert done.returncode == 0, done.stdout + done.stderr
    match = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", done.stdout)
    assert match, done.stdout
    return int(match.group(1))


def ruleset(ns: str) -> str:
    return run(["nsenter", f"--net=/run/netns/{ns}", "nft", "list", "ruleset"])


def test_converge_idempotence_check_mode_and_a_fleet_edit(router: str, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yml"
    shutil.copy(EXAMPLE, fleet)
    assert changed(playbook(router, tmp_path, fleet)) >= 2  # sysctl, file (+ handler)
    loaded = ruleset(router)
    assert "table inet vpsfleet_edge" in loaded and "jump in_ds-par1-01" in loaded
    assert run(["nsenter", f"--net=/run/netns/{router}", "sysctl", "-n",
                "net.ipv4.ip_forward"]).strip() == "1"
    assert (tmp_path / "sysctl.conf").read_text().strip() == "net.ipv4.ip_forward=1"
    rendered = tmp_path / "render.nft"
    assert main(["edge", "render", str(fleet), "par1", "--now", NOW, "-o", str(rendered)]) == 0
    assert (tmp_path / "etc" / "edge.nft").read_text() == rendered.read_text()

    assert changed(playbook(router, tmp_path, fleet)) == 0  # idempotence

    assert main(["smtp", "block", str(fleet), "ds-par1-01", "--reason", "spam",
                 "--now", NOW]) == 0
    assert changed(playbook(router, tmp_path, fleet, "--check", "--diff")) == 1
    assert "M6 SMTP block" not in ruleset(router)  # check mode loads nothing
    assert changed(playbook(router, tmp_path, fleet)) == 2  # the file and its load
    assert "M6 SMTP block" in ruleset(router)


def test_a_ruleset_nft_refuses_leaves_the_router_as_it_was(router: str, tmp_path: Path) -> None:
    fleet = tmp_path / "fleet.yml"
    shutil.copy(EXAMPLE, fleet)
    assert changed(playbook(router, tmp_path, fleet)) >= 2
    before = (tmp_path / "etc" / "edge.nft").read_text()
    bad = "table inet vpsfleet_edge {\n  chain forward {\n    tcp dport 25 frobnicate\n  }\n}\n"
    done = playbook(router, tmp_path, fleet, "-e", f"edge_router_ruleset='{bad}'")
    assert done.returncode != 0
    assert "failed to validate" in done.stdout + done.stderr
    assert (tmp_path / "etc" / "edge.nft").read_text() == before
    assert "jump in_ds-par1-01" in ruleset(router)
