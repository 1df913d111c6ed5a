"""Operations as fleet edits (M6, M7, M9): what they write, what they refuse, what they keep."""

from __future__ import annotations

import datetime as dt
import difflib
import shutil
from pathlib import Path

import pytest

from tests.pulumi.fleets import REPO
from tests.pulumi.harness import run_program
from vpsfleet import load_fleet
from vpsfleet.cli import main
from vpsfleet.commands.operations import (
    OperationRefused,
    resize,
    resume,
    smtp_block,
    smtp_unblock,
    suspend,
    terminate,
)
from vpsfleet.filters import smtp_blocked
from vpsfleet.schema import GuestState

T0 = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)
GUEST = "bravo-vps"


@pytest.fixture
def lab(tmp_path: Path) -> Path:
    target = tmp_path / "fleet.yml"
    shutil.copy(REPO / "inventories" / "lab" / "fleet.yml", target)
    return target


def changed_lines(before: str, after: str) -> list[str]:
    return [line for line in difflib.unified_diff(before.splitlines(), after.splitlines(),
                                                   lineterm="", n=0)
            if line[:1] in "+-" and not line.startswith(("+++", "---"))]


def test_each_new_smtp_block_lasts_longer_and_the_last_duration_repeats(lab: Path) -> None:
    durations = load_fleet(lab).policy.smtp_block.durations_hours
    now = T0
    lengths = []
    for _ in range(len(durations) + 1):
        done = smtp_block(lab, GUEST, reason="spam", now=now)
        lengths.append((done["until"] - now) / dt.timedelta(hours=1))
        now = done["until"] + DAY  # after it expired
    assert lengths == [*durations, durations[-1]]
    guest = load_fleet(lab).guest(GUEST)
    assert guest is not None and len(guest.smtp_blocks) == len(durations) + 1


def test_third_smtp_block_cannot_be_lifted_without_force(lab: Path) -> None:
    now = T0
    for _ in range(2):
        smtp_block(lab, GUEST, reason="spam", now=now)
        smtp_unblock(lab, GUEST, reason="cleaned", force=False, now=now + dt.timedelta(hours=1))
        now += DAY
    smtp_block(lab, GUEST, reason="spam again", now=now)
    before = lab.read_text()
    with pytest.raises(OperationRefused, match="--force"):
        smtp_unblock(lab, GUEST, reason="please", force=False, now=now + DAY)
    assert lab.read_text() == before
    smtp_unblock(lab, GUEST, reason="approved by the abuse desk", force=True, now=now + DAY)
    guest = load_fleet(lab).guest(GUEST)
    assert guest is not None
    last = guest.smtp_blocks[-1]
    assert last.forced and last.lift_reason == "approved by the abuse desk"
    assert not smtp_blocked(guest, now + 2 * DAY)
    assert [b.reason for b in guest.smtp_blocks] == ["spam", "spam", "spam again"]  # history kept


def test_an_indefinite_block_is_allowed_only_from_the_refusal_threshold(lab: Path) -> None:
    with pytest.raises(OperationRefused, match="cannot be indefinite"):
        smtp_block(lab, GUEST, reason="spam", now=T0, indefinite=True)
    now = T0
    for _ in range(2):
        now = smtp_block(lab, GUEST, reason="spam", now=now)["until"] + DAY
    assert smtp_block(lab, GUEST, reason="spam", now=now, indefinite=True)["until"] is None
    guest = load_fleet(lab).guest(GUEST)
    assert guest is not None and smtp_blocked(guest, now + 3650 * DAY)


def test_a_second_block_is_refused_while_one_is_active(lab: Path) -> None:
    smtp_block(lab, GUEST, reason="spam", now=T0)
    with pytest.raises(OperationRefused, match="already"):
        smtp_block(lab, GUEST, reason="spam", now=T0 + dt.timedelta(hours=1))


def test_smtp_block_edits_only_the_guest_and_keeps_comments(lab: Path) -> None:
    before = lab.read_text()
    assert main(["smtp", "block", str(lab), GUEST, "--reason", "spam, ticket 7",
                 "--now", "2026-11-23T12:00:00+00:00"]) == 0
    after = lab.read_text()
    assert changed_lines(before, after) == [
        "+    smtp_blocks:",
        "+      - blocked_at: 2026-11-23T12:00:00Z",
        "+        until: 2026-11-24T12:00:00Z",
        "+        reason: spam, ticket 7",
    ]


def test_suspend_and_resume_round_trip_the_file(lab: Path) -> None:
    original = lab.read_text()
    suspend(lab, "bravo-dev", reason="unpaid invoice", today=T0.date())
    guest = load_fleet(lab).guest("bravo-dev")
    assert guest is not None and guest.state is GuestState.SUSPENDED
    assert guest.suspended_on == T0.date()
    assert "state: suspended # unpaid invoice" in lab.read_text()
    with pytest.raises(OperationRefused):
        suspend(lab, "bravo-dev", reason="", today=T0.date())
    resume(lab, "bravo-dev", today=T0.date())
    assert lab.read_text() == original


def test_resize_changes_the_plan_line_only_and_never_shrinks_a_disk(lab: Path) -> None:
    before = lab.read_text()
    done = resize(lab, GUEST, "vps-m", today=T0.date())
    assert done == {"reboot": True, "grow_gb": 20, "disk_gb": 40}
    assert changed_lines(before, lab.read_text()) == ["-    plan: vps-s", "+    plan: vps-m"]
    with pytest.raises(OperationRefused, match="never shrinks"):
        resize(lab, GUEST, "vps-s", today=T0.date())
    with pytest.raises(OperationRefused, match="no plan"):
        resize(lab, GUEST, "vps-xxl", today=T0.date())


def test_refusals_exit_non_zero_and_leave_the_file(lab: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    before = lab.read_text()
    assert main(["smtp", "unblock", str(lab), GUEST, "--reason", "x"]) == 1
    assert main(["resume", str(lab), GUEST]) == 1
    assert lab.read_text() == before
    assert "is unchanged" in capsys.readouterr().err


def test_an_smtp_block_made_by_the_cli_reaches_only_the_filter(lab: Path) -> None:
    before = {(r.type, r.name): r.inputs for r in run_program(load_fleet(lab), T0).registrations}
    smtp_block(lab, GUEST, reason="spam", now=T0 - dt.timedelta(hours=1))
    after = {(r.type, r.name): r.inputs for r in run_program(load_fleet(lab), T0).registrations}
    assert {key for key in before if before[key] != after[key]} == \
        {("pulumi-python:dynamic/vpsfleet:NwFilter", f"{GUEST}-filter")}


def test_terminate_marks_the_guest_and_quarantines_its_address(lab: Path) -> None:
    before = load_fleet(lab)
    address = terminate(lab, "bravo-dev", on=T0.date())
    after = load_fleet(lab)
    guest = after.guest("bravo-dev")
    assert guest is not None and guest.state is GuestState.TERMINATED
    assert guest.terminated_on == T0.date() and guest.ipv4 is None
    assert address == "198.51.100.13"
    assert [(str(q.ipv4), q.guest) for q in after.quarantine] == [(address, "bravo-dev")]
    with pytest.raises(OperationRefused, match="terminated"):
        terminate(lab, "bravo-dev", on=T0.date())
    # The program drops the guest's resources and names the volume to unprotect.
    outputs = run_program(after, T0).outputs
    assert "bravo-dev" in {g.name for g in before.live_guests()}
    assert "bravo-dev" not in outputs["guests"]
    assert outputs["terminated_volumes"]["bravo-dev"] == (
        "urn:pulumi:lab::vpsfleet::vpsfleet:infra:Host$vpsfleet:infra:Guest"
        "$libvirt:index/volume:Volume::bravo-dev-root.qcow2")
