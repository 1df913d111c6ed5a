"""The `vpsfleet` command as an operator runs it."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CORPUS, REPO

VPSFLEET = str(Path(sys.executable).parent / "vpsfleet")


def run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run([VPSFLEET, *args], cwd=cwd, capture_output=True, text=True,
                          check=False)


def test_validate_accepts_both_example_environments() -> None:
    for env in ("lab", "example-production"):
        result = run("validate", env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"inventories/{env}/fleet.yml: valid")


def test_validate_lists_every_problem_with_file_and_location_and_exits_non_zero() -> None:
    result = run("validate", str(CORPUS / "several-sections.yml"), "--today", "2026-11-23")
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert lines[0] == ("tests/fleet/corpus/several-sections.yml: hosts[0].capacity.vcpu: "
                        "Input should be greater than 0 (got -4)")
    assert len([line for line in lines if line.startswith("tests/fleet/corpus/")]) == 3
    assert lines[-1] == "3 problem(s): fix them first; nothing was applied."


def test_an_unknown_environment_names_the_known_ones() -> None:
    result = run("validate", "staging")
    assert result.returncode == 2
    assert "no environment 'staging'" in result.stderr
    assert "example-production, lab" in result.stderr


def test_show_gives_host_capacity_guests_and_free_addresses() -> None:
    result = run("show", "lab", "--today", "2026-11-23")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "labhv1  lab-a  qemu  4       5/8 (62%)  5120/12288 (42%)  100/200 (50%)" in out
    assert "alpha-web  198.51.100.10  labhv1  lab-a  vps-m  managed" in out
    # labhv2, the hypervisor the site reaches, hosts no guest
    assert "labhv2  lab-a  qemu  0       0/8 (0%)" in out
    # 254 host addresses - gateway - 3 reserved (resolver, relay, edge router) = 250 usable,
    # 4 guests, two dedicated servers and labhv2: 243 free.
    assert "lab-public   lab-a  198.51.100.0/24  198.51.100.1  250     7     0            243" in out
    # The lab's dedicated servers: one paid on 2026-12-01 and not yet delivered, one delivered
    # three days before it was due (M12).
    assert "bravo-dedi  198.51.100.4   lab-a  c-bravo   due 2026-12-08" in out
    assert "alpha-dedi  198.51.100.20  lab-a  c-alpha   delivered 2026-11-06" in out


def test_show_flags_an_overdue_dedicated_server() -> None:
    result = run("show", "example-production", "--today", "2026-12-15")
    assert result.returncode == 0, result.stderr
    assert "ds-rbx1-01  198.51.100.200  rbx1  c-0006    OVERDUE since 2026-11-27 (M12)" in (
        result.stdout)
    assert "ds-par1-01  192.0.2.200     par1  c-0003    delivered 2026-09-04" in result.stdout


def test_show_refuses_an_invalid_fleet() -> None:
    result = run("show", str(CORPUS / "ipv4-gateway.yml"))
    assert result.returncode == 1
    assert "guests[0].ipv4: 198.51.100.1 is the gateway of pool lab-public" in result.stderr


@pytest.fixture
def env_tree(tmp_path: Path) -> Path:
    (tmp_path / "inventories" / "lab").mkdir(parents=True)
    shutil.copy(REPO / "inventories/lab/fleet.yml", tmp_path / "inventories/lab/fleet.yml")
    return tmp_path


def test_ipam_allocate_and_free_from_the_command_line(env_tree: Path) -> None:
    fleet = env_tree / "inventories/lab/fleet.yml"
    fleet.write_text(fleet.read_text().replace("\nbackup_stores:", (
        "\n  - name: bravo-new\n    created: 2026-11-20\n    customer: c-bravo\n"
        "    offer: unmanaged\n    plan: vps-s\n    host: labhv1\n    image: debian-12\n\nbackup_stores:")))
    assert run("validate", "lab", cwd=env_tree).returncode == 1
    result = run("ipam", "allocate", "lab", "bravo-new", cwd=env_tree)
    assert result.returncode == 0, result.stderr
    assert result.stdout == ("bravo-new: allocated 198.51.100.5 in inventories/lab/fleet.yml; "
                             "commit it for review\n")
    assert run("validate", "lab", cwd=env_tree).returncode == 0
    again = run("ipam", "allocate", "lab", "bravo-new", cwd=env_tree)
    assert again.returncode == 1 and "never changes" in again.stderr
    free = run("ipam", "free", "lab", "lab-a", "--limit", "2", cwd=env_tree)
    assert free.stdout == "198.51.100.6\tlab-public\n198.51.100.7\tlab-public\n"


def test_validate_against_a_revision_refuses_a_datacenter_move(env_tree: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
                       cwd=env_tree, check=True, capture_output=True)

    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "base")
    fleet = env_tree / "inventories/lab/fleet.yml"
    # A third host in lab-b and bravo-dev moved onto it with an lab-b address.
    text = fleet.read_text().replace("\nplans:", (
        "\n  - name: labhv3\n    datacenter: lab-b\n    uri: qemu:///system\n"
        "    domain_type: qemu\n    capacity: {vcpu: 2, ram_mb: 8192, disk_gb: 200}\n"
        "    overcommit: {cpu: 4.0, ram: 1.5}\n    bridge: br-lab\n"
        "    images: {debian-12: debian-12.qcow2}\n\nplans:"))
    text = text.replace("    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.13",
                        "    host: labhv3\n    image: debian-12\n    ipv4: 203.0.113.13")
    fleet.write_text(text)
    assert run("validate", "lab", cwd=env_tree).returncode == 0
    result = run("validate", "lab", "--against", "HEAD", cwd=env_tree)
    assert result.returncode == 1
    assert ("inventories/lab/fleet.yml: guests[3].host: moves bravo-dev from datacenter lab-a "
            "to lab-b: the datacenter choice is final (M10)") in result.stderr
