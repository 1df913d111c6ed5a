"""`vpsfleet validate --against REV`: what a contract fixes cannot change in a merge."""

from __future__ import annotations

import datetime as dt
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


def problems_after(repo: Path, old: str, new: str, today: dt.date = TODAY) -> list[str]:
    path = repo / "fleet.yml"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))
    fleet = load_fleet(path, today=today)  # the new file is valid on its own
    return [f"{p.location}: {p.message}" for p in check_against(fleet, path, "HEAD", today=today)]


def commit(repo: Path, old: str, new: str) -> None:
    path = repo / "fleet.yml"
    assert old in path.read_text()
    path.write_text(path.read_text().replace(old, new, 1))
    load_fleet(path, today=TODAY)
    git(repo, "-c", "user.name=t", "-c", "user.email=t@example.com", "commit", "-qam", "change")


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
        "  - {name: web2, created: 2026-02-01, customer: c1, offer: unmanaged, plan: s, host: hv1, "
        "image: debian-12, ipv4: 198.51.100.11}\n", "")
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


WEB2 = ("  - {name: web2, created: 2026-02-01, customer: c1, offer: unmanaged, plan: s, host: hv1, "
        "image: debian-12, ipv4: 198.51.100.11}")
QUARANTINED = "quarantine:\n  - {{ipv4: 198.51.100.11, released_on: {day}, guest: web2}}\n"


def terminated(on: str, *, released: bool) -> str:
    """web2, terminated on `on`, its address still on it or released into quarantine that day."""
    if released:
        return WEB2.replace(", ipv4: 198.51.100.11}", f", state: terminated, terminated_on: {on}}}")
    return WEB2.replace("}", f", state: terminated, terminated_on: {on}}}")


def with_quarantine(text: str, day: str) -> str:
    return text + "\n" + QUARANTINED.format(day=day)


def test_a_terminated_entry_stays_until_the_store_has_erased_its_backups(repo: Path) -> None:
    """M11: the store erases a terminated guest's sets on its termination date; if the entry
    leaves the file before, the store never hears of the erasure."""
    commit(repo, WEB2 + "\n", with_quarantine(terminated("2026-11-23", released=True), "2026-11-23"))
    gone = "  - {name: web2, created: 2026-02-01, customer: c1, offer: unmanaged, plan: s, " \
           "host: hv1, image: debian-12, state: terminated, terminated_on: 2026-11-23}\n"
    assert problems_after(repo, gone, "") == [
        "guests: web2 was removed too early: the store erases its backups on 2026-11-23 (M11). "
        "Its entry may go from 2026-11-24 on"]
    assert problems_after(repo, "quarantine:", "quarantine:", today=dt.date(2026, 11, 24)) == []


def test_removing_a_terminated_entry_never_frees_its_address_early(repo: Path) -> None:
    """M3: an address still on the removed entry would be free at once, without quarantine."""
    commit(repo, WEB2, terminated("2026-10-01", released=False))
    entry = terminated("2026-10-01", released=False) + "\n"
    assert problems_after(repo, entry, "") == [
        "guests: web2 was removed too early: its address 198.51.100.11 would be free at once: "
        "release it into quarantine first (vpsfleet ipam release), or wait until 2026-12-30 (M3). "
        "Its entry may go from 2026-12-30 on"]
    # Released into quarantine in the same change: the quarantine holds the address.
    path = repo / "fleet.yml"
    path.write_text(with_quarantine(path.read_text(), "2026-11-23"))
    fleet = load_fleet(path, today=TODAY)
    assert check_against(fleet, path, "HEAD", today=TODAY) == []


def test_a_quarantine_entry_stays_until_its_quarantine_ends(repo: Path) -> None:
    quarantine = QUARANTINED.format(day="2026-11-01").replace("198.51.100.11", "198.51.100.99")
    commit(repo, "backup_stores:", quarantine + "backup_stores:")
    entry = "  - {ipv4: 198.51.100.99, released_on: 2026-11-01, guest: web2}\n"
    assert problems_after(repo, entry, "") == [
        "quarantine: the quarantine of 198.51.100.99 (released from web2 on 2026-11-01) was "
        "removed before it ends on 2027-01-30 (M3)"]
    assert problems_after(repo, "quarantine:", "quarantine:", today=dt.date(2027, 1, 30)) == []


def test_a_terminated_name_is_not_taken_by_a_new_guest_before_the_old_one_may_go(
    repo: Path,
) -> None:
    """#5: a new identity under a terminated name replaces the old entry: only once its store
    tree is erased and its address has waited its quarantine."""
    commit(repo, WEB2, terminated("2026-11-23", released=False))
    new = WEB2.replace("created: 2026-02-01", "created: 2026-11-23").replace(".11}", ".12}")
    assert problems_after(repo, terminated("2026-11-23", released=False), new) == [
        "guests[1].created: web2 (created 2026-02-01) was terminated at HEAD: a new guest may "
        "take its name from 2027-02-21 on, not before (the store erases its backups on "
        "2026-11-23 (M11); its address 198.51.100.11 would be free at once: release it into "
        "quarantine first (vpsfleet ipam release), or wait until 2027-02-21 (M3))"]
    assert problems_after(repo, "created: 2026-11-23", "created: 2026-11-23",
                          today=dt.date(2027, 2, 21)) == []


def test_a_live_guests_new_identity_is_a_credential_rotation(repo: Path) -> None:
    assert problems_after(repo, WEB2, WEB2.replace("created: 2026-02-01", "created: 2026-11-23")) == []


def test_a_guest_never_changes_customer(repo: Path) -> None:
    commit(repo, "customers:\n", "customers:\n  - {id: c2, created: 2026-03-01, name: Two, "
           "email: two@customer.example.com}\n")
    assert problems_after(repo, WEB2, WEB2.replace("customer: c1", "customer: c2")) == [
        "guests[1].customer: gives web2 of c1 to c2: a guest's data and backups belong to its "
        "customer; terminate it and declare a new guest (M11)"]


def test_a_customers_new_identity_waits_for_its_terminated_guests_erasure(repo: Path) -> None:
    """The read account opens /<customer>/ on the store: a new identity may not read the sets a
    terminated guest still has there."""
    commit(repo, WEB2, terminated("2026-11-30", released=False))
    assert problems_after(repo, "{id: c1, created: 2026-01-05,", "{id: c1, created: 2026-11-23,") == [
        "customers[0].created: c1 gets a new identity (created 2026-01-05 at HEAD, now 2026-11-23) "
        "while the backups of its terminated guests (web2) are kept on the store until "
        "2026-11-30 (M11): the new identity would read them; change it after 2026-11-30"]
    assert problems_after(repo, "created: 2026-11-23,", "created: 2026-11-23,",
                          today=dt.date(2026, 12, 1)) == []
