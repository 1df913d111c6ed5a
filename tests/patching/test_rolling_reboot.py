"""playbooks/patch.yml on real systemd guests that really reboot (M14): one canary, then 10 %,
then the rest; a guest that does not come back stops the rollout and leaves the later batches
untouched; no guest reboots without its notice or before its announced time; a held dpkg lock
and a failed package install stop it too, each saying why."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest

from tests.patching.apt_repo import build_apt_repo
from tests.patching.guests import Guest, podman, run_patch, wait_booted

pytestmark = [pytest.mark.molecule, pytest.mark.slow]

PAST = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
FUTURE = dt.datetime.now(dt.UTC) + dt.timedelta(hours=20)
SERVICES = {"vpsfleet_services": ["ssh"]}


@pytest.fixture(scope="module")
def guests(make_guests: Any) -> dict[str, Guest]:
    made: dict[str, Guest] = make_guests(
        {
            "patching-roll-1": "always",
            "patching-roll-2": "no",  # systemd's reboot stops it for good: it never comes back
            "patching-roll-3": "always",
            "patching-roll-4": "always",
        }
    )
    # The canary serves web: a stand-in for nginx that starts at boot, so the post-check asks
    # it for a page after the reboot.
    made["patching-roll-1"].sh(
        "printf '[Service]\\nExecStart=/usr/bin/python3 -m http.server 80 --bind 127.0.0.1 "
        "--directory /srv\\n[Install]\\nWantedBy=multi-user.target\\n' "
        "> /etc/systemd/system/nginx.service && systemctl enable --now nginx.service"
    )
    return made


@pytest.fixture(scope="module")
def first_rollout(guests: dict[str, Guest], tmp_path_factory: pytest.TempPathFactory) -> Any:
    for guest in guests.values():
        guest.announce(PAST)
    before = {name: g.pid1_start() for name, g in guests.items()}
    host_vars = {h: SERVICES for h in guests}
    host_vars["patching-roll-1"] = {"vpsfleet_services": ["ssh", "nginx"]}
    run = run_patch(
        tmp_path_factory.mktemp("rollout-1"),
        ["patching-roll-1", "patching-roll-2", "patching-roll-3"],
        host_vars,
        patching_rollout_reboot_timeout=40,
    )
    return run, before


def test_canary_reboots_and_comes_back(guests: dict[str, Guest], first_rollout: Any) -> None:
    run, before = first_rollout
    canary = guests["patching-roll-1"]
    assert canary.pid1_start() != before["patching-roll-1"], run.output
    assert canary.sh("test -e /run/reboot-required && echo yes || echo no") == "no"
    assert run.results()["patching-roll-1"]["result"] == "ok"
    assert '"status": "done"' in canary.sh("cat /var/lib/vpsfleet/patching/notice.json")
    # Its web server was asked for a page after the reboot (and answered).
    # The task runs in role patching (entry point rollout_verify): "TASK [patching : Check ...]".
    web_check = run.output.split("Check the web server answers]", 1)[1].split("TASK [", 1)[0]
    assert "ok: [patching-roll-1]" in web_check


def test_guest_that_does_not_come_back_stops_the_rollout(
    guests: dict[str, Guest], first_rollout: Any
) -> None:
    run, before = first_rollout
    assert run.rc != 0
    failed = run.results()["patching-roll-2"]
    assert failed["result"] == "failed"
    assert failed["task"] == "Reboot (announced by mail)"
    assert not guests["patching-roll-2"].running()
    # The third batch was never started: its guest still waits for its reboot.
    assert "patching-roll-3" not in run.results()
    assert guests["patching-roll-3"].pid1_start() == before["patching-roll-3"]
    assert not (run.summary_dir / "summary.json").exists()


def test_paused_rollout_touches_no_guest(
    guests: dict[str, Guest], first_rollout: Any, tmp_path: Path
) -> None:
    due = guests["patching-roll-3"]  # still due: the first rollout stopped before it
    before = due.pid1_start()
    pause = tmp_path / "PATCH_PAUSED"
    pause.touch()
    run = run_patch(tmp_path, [due.name], {due.name: SERVICES}, patching_rollout_pause_file=str(pause))
    assert run.rc == 0, run.output
    assert due.pid1_start() == before
    summary = json.loads((run.summary_dir / "summary.json").read_text(encoding="utf-8"))
    assert (summary["paused"], summary["complete"], summary["guests"]) == (True, False, [])


def test_no_reboot_without_notice_or_before_its_time(
    guests: dict[str, Guest], first_rollout: Any, tmp_path: Path
) -> None:
    guests["patching-roll-1"].announce(FUTURE)  # announced, not yet due
    guests["patching-roll-4"].announce(PAST, sent=False)  # needs a reboot, never announced
    before = {name: guests[name].pid1_start() for name in guests if name != "patching-roll-2"}
    hosts = ["patching-roll-1", "patching-roll-3", "patching-roll-4"]
    # Check mode says who is due and touches no one.
    dry = run_patch(tmp_path / "check", hosts, {h: SERVICES for h in guests}, check=True, patch_serial=[3])
    assert dry.rc == 0, dry.output
    assert {h: r["result"] for h, r in dry.results().items()} == {"patching-roll-3": "would reboot"}
    assert guests["patching-roll-3"].pid1_start() == before["patching-roll-3"]
    # One batch: the batches themselves are the first rollout's business.
    run = run_patch(tmp_path / "run", hosts, {h: SERVICES for h in guests}, patch_serial=[3])
    assert run.rc == 0, run.output
    assert guests["patching-roll-1"].pid1_start() == before["patching-roll-1"]
    assert guests["patching-roll-4"].pid1_start() == before["patching-roll-4"]
    assert guests["patching-roll-3"].pid1_start() != before["patching-roll-3"]
    assert sorted(run.results()) == ["patching-roll-3"]
    summary = (run.summary_dir / "summary.json").read_text(encoding="utf-8")
    assert '"complete": true' in summary


def test_held_dpkg_lock_and_failed_package_stop_the_rollout_before_any_reboot(
    guests: dict[str, Guest], first_rollout: Any, tmp_path: Path
) -> None:
    locked, broken = guests["patching-roll-3"], guests["patching-roll-4"]
    for guest in (locked, broken):
        guest.announce(PAST)
    # Another apt holds the lock (dpkg locks with fcntl): the pre-check waits, then gives up.
    podman(
        "exec",
        "-d",
        locked.name,
        "python3",
        "-c",
        "import fcntl, time; f = open('/var/lib/dpkg/lock-frontend', 'a'); "
        "fcntl.lockf(f, fcntl.LOCK_EX); time.sleep(600)",
    )
    # A security update whose post-install failed: the package is left half-configured.
    repo = tmp_path / "repo"
    build_apt_repo(repo)
    podman(
        "cp", str(repo / "security" / "pool" / "vpsfleet-sec-broken-demo_1.1_all.deb"), f"{broken.name}:/tmp/"
    )
    broken.sh("dpkg -i /tmp/vpsfleet-sec-broken-demo_1.1_all.deb", check=False)
    before = {g.name: g.pid1_start() for g in (locked, broken)}
    run = run_patch(
        tmp_path,
        [locked.name, broken.name],
        {h: SERVICES for h in guests},
        patch_serial=[2],
        patching_rollout_lock_timeout=6,
    )
    assert run.rc != 0
    results = run.results()
    assert results[locked.name]["task"] == "Wait for apt and dpkg to be free"
    assert "still locked after 6 s" in results[locked.name]["reason"]
    assert results[broken.name]["task"] == "Refuse after a package failed to install"
    assert "vpsfleet-sec-broken-demo" in results[broken.name]["reason"]
    assert {g.name: g.pid1_start() for g in (locked, broken)} == before


def test_rebooted_guest_is_healthy(guests: dict[str, Guest], first_rollout: Any) -> None:
    canary = guests["patching-roll-1"]
    wait_booted(canary)
    assert canary.sh("systemctl is-active ssh") == "active"
