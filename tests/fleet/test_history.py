"""`vpsfleet validate --against REV`: what a contract fixes cannot change in a merge."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vpsfleet.history import HistoryUnavailable, check_against
from vpsfleet.loader import load_fleet

from .conftest import TODAY


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path, minimal_copy: Path) -> Path:
    """A git repository whose first commit holds the minimal fleet, with a third datacenter
    host and a larger plan to move to."""
    text = minimal_copy.read_text()
    text = text.replace("plans:\n", "plans:\n  - {name: big, vcpu: 1, ram_mb: 2048, disk_gb: 40, "
                        "bandwidth_mbps: 100, monthly_quota_tb: 10, throttle_mbps: 1}\n")
    text = text.replace("hosts:\n", "hosts:\n  - name: hv2\n    datacenter: dc-b\n"
                        "    uri: qemu:///system\n    domain_type: qemu\n"
                        "    capacity: {vcpu: 4, ram_mb: 8192, disk_gb: 100}\n"
                        "    overcommit: {cpu: 2.0, ram: 1.0}\n    bridge: br0\n"
                        "    images: {debian-12: debian-12.qcow2}\n")
    text = text.replace("plan: s, host: hv1, image: debian-12, ipv4: 198.51.100.10",
                        "plan: big, host: hv1, image: debian-12, ipv4: 198.51.100.10")
    minimal_copy.write_text(text)
    git(tmp_path, "init", "-q")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "add", "fleet.yml")
    git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qm", "base")
    return tmp_path


def problems_after(repo: Path, old: str, new: str) -> list[str]:
    path = repo / "fleet.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    fleet = load_fleet(path, today=TODAY)  # the new file is valid on its own
    return [f"{p.location}: {p.message}" for p in check_against(fleet, path, "HEAD")]


def test_an_unchanged_fleet_has_no_history_problem(repo: Path) -> None:
    fleet = load_fleet(repo / "fleet.yml", today=TODAY)
    assert check_against(fleet, repo / "fleet.yml", "HEAD") == []


def test_a_guest_never_moves_to_another_datacenter(repo: Path) -> None:
    # Moving web2 to hv2 (dc-b) is refused, even though its own fields are consistent.
    found = problems_after(
        repo,
        "plan: s, host: hv1, image: debian-12, ipv4: 198.51.100.11",
        "plan: s, host: hv2, image: debian-12, ipv4: 203.0.113.11",
    )
    assert found[0] == ("guests[1].host: moves web2 from datacenter dc-a to dc-b: the datacenter "
                        "choice is final (M10)")


def test_a_plan_change_never_shrinks_the_disk(repo: Path) -> None:
    found = problems_after(repo, "plan: big, host: hv1", "plan: s, host: hv1")
    assert found == ["guests[0].plan: plan s would shrink web1's disk from 40 GB to 20 GB: "
                     "a disk only grows (M9)"]


def test_a_plan_change_that_grows_the_disk_is_accepted(repo: Path) -> None:
    assert problems_after(repo, "plan: s, host: hv1, image: debian-12, ipv4: 198.51.100.11",
                          "plan: big, host: hv1, image: debian-12, ipv4: 198.51.100.11") == []


def test_a_live_guests_address_never_changes(repo: Path) -> None:
    found = problems_after(repo, "ipv4: 198.51.100.11", "ipv4: 198.51.100.99")
    assert found == ["guests[1].ipv4: changes web2's address from 198.51.100.11 to "
                     "198.51.100.99: a fixed IPv4 never changes while the contract runs (M3)"]


def test_a_live_guest_cannot_simply_disappear(repo: Path) -> None:
    found = problems_after(
        repo,
        "  - {name: web2, customer: c1, offer: unmanaged, plan: s, host: hv1, image: debian-12, "
        "ipv4: 198.51.100.11}\n", "")
    assert found == ["guests: web2 was removed while active: terminate it first (state: "
                     "terminated, terminated_on: DATE) (M11)"]


def test_a_terminated_guest_is_not_brought_back(repo: Path) -> None:
    path = repo / "fleet.yml"
    path.write_text(path.read_text().replace(
        "ipv4: 198.51.100.11}", "ipv4: 198.51.100.11, state: terminated, terminated_on: 2026-11-01}"))
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "terminate")
    found = problems_after(repo, ", state: terminated, terminated_on: 2026-11-01}", "}")
    assert found == ["guests[1].state: web2 was terminated at HEAD: its data is gone (M11); "
                     "declare a new guest instead"]


def test_a_new_file_has_no_history(repo: Path) -> None:
    other = repo / "new"
    other.mkdir()
    (other / "fleet.yml").write_text((repo / "fleet.yml").read_text())
    fleet = load_fleet(other / "fleet.yml", today=TODAY)
    assert check_against(fleet, other / "fleet.yml", "HEAD") == []


def test_an_unknown_revision_is_reported(repo: Path) -> None:
    fleet = load_fleet(repo / "fleet.yml", today=TODAY)
    with pytest.raises(HistoryUnavailable, match="not a commit"):
        check_against(fleet, repo / "fleet.yml", "no-such-branch")
