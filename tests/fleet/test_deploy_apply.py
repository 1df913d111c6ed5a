"""`vpsfleet deploy apply|nightly` (issue 13) on a throwaway repository of the lab fleet: the
steps in order (Pulumi skipped by flag, or a stand-in `pulumi` on PATH), a real ansible-runner
run of tiny local playbooks, the notices in the real mail sink (tests/mail_sink/running.py),
sent once per event, and no password in any record, log or artifact."""

from __future__ import annotations

import email
import email.policy
import os
import re
import secrets
import shutil
import sys
import time
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.mail_sink.running import running_sink
from vpsfleet.access_codes import initial_password
from vpsfleet.cli import main
from vpsfleet.deploy_apply import is_secret_name

from .test_deploy import (
    BLOCK_VPS,
    NEW_GUEST,
    NEW_MANAGED,
    NOW,
    SUSPEND_DEV,
    commit,
    edited,
    git,
)
from .test_deploy import repo as repo  # the fixture: the lab fleet, committed

PLAYBOOK = """\
- name: A stand-in for {name}
  hosts: all
  gather_facts: false
  tasks:
    - name: Leave a mark per host
      ansible.builtin.copy:
        dest: "{{{{ marks }}}}/{name}-{{{{ inventory_hostname }}}}"
        content: "ran\\n"
        mode: "0644"
"""
FAILING = """\
- name: A failing site.yml
  hosts: all
  gather_facts: false
  tasks:
    - name: Fail
      ansible.builtin.fail:
        msg: the stand-in site.yml fails
"""


@pytest.fixture
def sink(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    work = tmp_path / "sink"
    work.mkdir()
    with running_sink(work) as running:
        yield running


@pytest.fixture
def seed(monkeypatch: pytest.MonkeyPatch) -> str:
    value = secrets.token_urlsafe(24)  # a throwaway seed, as the CI's variable would be
    monkeypatch.setenv("VPSFLEET_PASSWORD_SEED", value)
    return value


class World:
    """The repository, the sink, the stand-in Ansible folder and inventory, the state."""

    def __init__(self, repo: Path, sink: tuple[int, Path], tmp: Path) -> None:
        self.repo, (self.port, self.maildir), self.tmp = repo, sink, tmp
        self.state = tmp / "state"
        self.marks = tmp / "marks"
        self.marks.mkdir()
        self.ansible = tmp / "ansible"
        (self.ansible / "playbooks").mkdir(parents=True)
        for name in ("site.yml", "handover.yml"):
            self.playbook(name, PLAYBOOK.format(name=name))
        # Point the fleet's relay at the sink (its certificate names sink.test), committed.
        fleet = repo / "fleet.yml"
        fleet.write_text(edited(("host: relay.lab.example.net", "host: sink.test"),
                                ("    port: 587", f"    port: {self.port}"),
                                text=fleet.read_text()))
        git(repo, "commit", "-qam", "relay: the test's sink")

    def playbook(self, name: str, text: str) -> None:
        (self.ansible / "playbooks" / name).write_text(text)

    def inventory(self, hosts: list[str]) -> Path:
        path = self.tmp / "hosts.yml"
        lines = ["all:", "  vars:", "    ansible_connection: local",
                 f"    ansible_python_interpreter: {sys.executable}", f"    marks: {self.marks}",
                 "  hosts:"] + [f"    {h}: {{}}" for h in hosts]
        path.write_text("\n".join(lines) + "\n")
        return path

    def apply(self, base: str, head: str, *extra: str) -> list[str]:
        inventory = self.inventory(["labstore1", "labmon1", "bravo-new", "alpha-new",
                                    "alpha-web", "alpha-app", "bravo-vps", "bravo-dev"])
        return ["deploy", "apply", str(self.repo / "fleet.yml"), "--from", base, "--to", head,
                "--now", NOW.isoformat(), "--state-dir", str(self.state), "--ansible-dir",
                str(self.ansible), "--inventory", str(inventory), "--relay-address",
                "127.0.0.1", "--relay-ca", str(self.tmp / "sink" / "cert.pem"), *extra]

    def mails(self, expected: int) -> list[EmailMessage]:
        folder = self.maildir / "new"
        deadline = time.monotonic() + 10  # the sink writes before it answers; a margin only
        while len(list(folder.iterdir())) < expected and time.monotonic() < deadline:
            time.sleep(0.1)
        found = [email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
                 for p in sorted(folder.iterdir())]
        return [m for m in found if isinstance(m, EmailMessage)]


@pytest.fixture
def world(repo: Path, sink: tuple[int, Path], tmp_path: Path) -> World:
    return World(repo, sink, tmp_path)


def body(mail: EmailMessage, subtype: str) -> str:
    part = mail.get_body(preferencelist=(subtype,))
    assert part is not None and part.get_content_type() == f"text/{subtype}"
    # no-break spaces as spaces, lines joined: facts are searched regardless of wrapping
    return re.sub(r"\s+", " ", str(part.get_content()).replace("\u00a0", " "))


def everything_written(*roots: Path) -> str:
    """Every byte under the state directory and the marks: record, nightly, runner artifacts."""
    chunks = []
    for root in roots:
        for path in root.rglob("*"):
            if path.is_file():
                chunks.append(path.read_bytes().decode(errors="replace"))
    return "\n".join(chunks)


def test_apply_runs_the_steps_in_order_and_sends_each_notice_once(
    world: World, seed: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    passphrase = secrets.token_urlsafe(24)  # as the CI sets it for Pulumi
    monkeypatch.setenv("PULUMI_CONFIG_PASSPHRASE", passphrase)
    base = git(world.repo, "rev-parse", "HEAD")
    head = commit(world.repo, NEW_GUEST, NEW_MANAGED, BLOCK_VPS, SUSPEND_DEV)
    assert main(world.apply(base, head, "--skip-pulumi")) == 0
    out = capsys.readouterr()
    steps = [line.split(":")[0].split(",")[0] for line in out.out.splitlines()
             if line[:3] in ("1. ", "2. ", "3. ", "4. ")]
    assert steps == ["1. pulumi", "2. ansible", "3. ansible", "4. customer notices (4)"]
    assert "skipped (--skip-pulumi)" in out.out
    # site.yml limited to the new managed guest, the store and the monitor; handover.yml to
    # the new unmanaged guest (the plan's limits)
    assert sorted(p.name for p in world.marks.iterdir()) == [
        "handover.yml-bravo-new", "site.yml-alpha-new", "site.yml-labmon1", "site.yml-labstore1"]
    artifacts = list((world.state / "ansible").glob("*/artifacts/*/stdout"))
    assert len(artifacts) == 2 and all(p.read_text() for p in artifacts)

    mails = {m["X-Vpsfleet-Notice"] + "/" + m["To"].addresses[0].username: m
             for m in world.mails(5)}
    assert sorted(mails) == ["access_codes/admin", "access_codes/it", "access_codes/ops",
                             "network_cut/it", "smtp_block/it"]
    password = initial_password(seed, "lab", "alpha-new")
    managed = mails["access_codes/admin"]  # c-alpha, French, with the password: alone
    assert managed["To"].addresses[0].addr_spec == "admin@alpha.example.com"
    assert managed["Cc"] is None and managed["X-RcptTo"] == "admin@alpha.example.com"
    assert managed["Content-Language"] == "fr"
    assert managed["Subject"] == "Votre VPS alpha-new est prêt : vos codes d'accès"
    text = body(managed, "plain")
    assert f"Mot de passe initial : {password}" in text
    assert "Adresse IPv4 fixe : 198.51.100.15" in text and password in body(managed, "html")
    copy = mails["access_codes/ops"]  # operations' own copy, the password withheld
    assert copy["X-RcptTo"] == "ops@lab.example.net"
    assert copy["X-Vpsfleet-Copy-Of"] == "admin@alpha.example.com"
    assert copy["Subject"] == managed["Subject"]
    assert "Mot de passe initial : (retiré de cette copie)" in body(copy, "plain")
    assert password not in body(copy, "plain") + body(copy, "html")
    unmanaged = mails["access_codes/it"]  # c-bravo, English, unmanaged: keys, no password
    assert unmanaged["Content-Language"] == "en"
    assert unmanaged["X-RcptTo"] == "it@bravo.example.org, ops@lab.example.net"  # Cc operations
    assert unmanaged["Cc"].addresses[0].addr_spec == "ops@lab.example.net"
    assert unmanaged["Subject"] == "Your VPS bravo-new is ready: your access codes"
    assert "ssh root@198.51.100.14" in body(unmanaged, "plain")
    block = body(mails["smtp_block/it"], "plain")
    # BLOCK_VPS: 2026-11-23T10:00Z to 2026-11-24T10:00Z, the guest's first block: 24 hours
    assert "Duration: 24 hours, until 24 November 2026, 10:00 UTC" in block
    assert "Block number: 1" in block and "write to support@lab.example.net" in block
    cut = body(mails["network_cut/it"], "plain")
    assert "Since 23 November 2026, your VPS bravo-dev (198.51.100.13)" in cut

    record = (world.state / "notices.json").read_text()
    assert managed["Message-ID"] in record and "admin@alpha.example.com" in record
    # The password is in the customer's mail only: not in the output, the record, the artifacts
    assert password not in out.out + out.err
    assert password not in everything_written(world.state, world.marks)
    # nor the seed or the Pulumi passphrase (ansible-runner writes its environment into the
    # artifacts: the apply withholds secret-named variables from it)
    for secret in (seed, passphrase):
        assert secret not in out.out + out.err + everything_written(world.state, world.marks)
    assert os.environ["VPSFLEET_PASSWORD_SEED"] == seed  # given back after the playbooks

    # A second apply of the same merge: the playbooks converge again, no notice is sent twice.
    assert main(world.apply(base, head, "--skip-pulumi")) == 0
    again = capsys.readouterr().out
    assert again.count("sent already on") == 4 and "0 sent, 4 sent already" in again
    assert len(world.mails(5)) == 5


def test_a_failing_playbook_stops_the_run(world: World, seed: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    world.playbook("site.yml", FAILING)
    base = git(world.repo, "rev-parse", "HEAD")
    head = commit(world.repo, NEW_GUEST, NEW_MANAGED)
    assert main(world.apply(base, head, "--skip-pulumi")) == 1
    err = capsys.readouterr().err
    assert "deploy stopped: ansible: site.yml failed (failed, exit 2)" in err
    assert "the steps after it did not run" in err
    assert list(world.marks.iterdir()) == []  # handover.yml did not run
    assert world.mails(0) == [] and not (world.state / "notices.json").exists()


def test_access_codes_without_the_seed_stop_the_notices(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("VPSFLEET_PASSWORD_SEED", raising=False)
    base = git(world.repo, "rev-parse", "HEAD")
    head = commit(world.repo, NEW_MANAGED)
    assert main(world.apply(base, head, "--skip-pulumi")) == 1
    err = capsys.readouterr().err
    assert "notices: notice access_codes for alpha-new: the access codes of a managed VPS need " \
           "the stack's password seed (vpsfleet:passwordSeed), and $VPSFLEET_PASSWORD_SEED is " \
           "empty or unset" in err
    assert world.mails(0) == [] and not (world.state / "notices.json").exists()
    # with the seed from a file, the same apply finishes the job
    seed_file = world.tmp / "seed"
    seed_file.write_text(secrets.token_urlsafe(24) + "\n")
    assert main(world.apply(base, head, "--skip-pulumi", "--password-seed-file",
                            str(seed_file))) == 0
    assert len(world.mails(2)) == 2  # the customer's, and operations' copy


def stand_in_pulumi(tmp: Path, monkeypatch: pytest.MonkeyPatch, code: int) -> Path:
    """A `pulumi` on PATH that records how it was called and exits with `code`."""
    folder = tmp / "bin"
    folder.mkdir()
    calls = tmp / "pulumi-calls"
    script = folder / "pulumi"
    script.write_text(f'#!/bin/sh\necho "$PWD $@" >> {calls}\nexit {code}\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}{os.pathsep}{os.environ['PATH']}")
    return calls


def test_pulumi_runs_first_and_its_failure_stops_everything(
    world: World, seed: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    calls = stand_in_pulumi(world.tmp, monkeypatch, 1)
    base = git(world.repo, "rev-parse", "HEAD")
    head = commit(world.repo, NEW_GUEST, BLOCK_VPS)
    assert main(world.apply(base, head, "--pulumi-dir", str(world.tmp))) == 1
    assert calls.read_text() == (f"{world.tmp} up --yes --non-interactive --skip-preview "
                                 "--stack lab\n")
    assert "deploy stopped: pulumi up of stack lab failed (exit 1)" in capsys.readouterr().err
    assert list(world.marks.iterdir()) == [] and world.mails(0) == []


def test_without_pulumi_and_without_the_flag_the_error_says_so(
    world: World, seed: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str]
) -> None:
    only_git = world.tmp / "only-git"
    only_git.mkdir()
    git_path = shutil.which("git")
    assert git_path is not None
    (only_git / "git").symlink_to(git_path)
    monkeypatch.setenv("PATH", str(only_git))  # git, and no pulumi
    base = git(world.repo, "rev-parse", "HEAD")
    head = commit(world.repo, BLOCK_VPS)
    assert main(world.apply(base, head)) == 1
    err = capsys.readouterr().err
    assert "the Pulumi CLI (pulumi) is not installed" in err and "--skip-pulumi" in err
    assert world.mails(0) == []


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        ((("    plan: vps-s\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.13",
           "    plan: vps-s\n    host: labhv2\n    image: debian-12\n    ipv4: 203.0.113.13"),
          ("hosts:\n", "hosts:\n  - name: labhv2\n    datacenter: lab-b\n    uri: qemu:///system\n"
           "    domain_type: qemu\n    capacity: {vcpu: 2, ram_mb: 8192, disk_gb: 200}\n"
           "    overcommit: {cpu: 4.0, ram: 1.5}\n    bridge: br-lab\n"
           "    images: {debian-12: debian-12-genericcloud-amd64.qcow2}\n")),
         "the datacenter choice is final (M10)"),
        ((("    plan: vps-m\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.10",
           "    plan: vps-s\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.10"),),
         "a disk only grows (M9)"),
    ],
)
def test_a_refused_merge_applies_nothing(
    world: World, seed: str, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str], edit: tuple[tuple[str, str], ...], reason: str
) -> None:
    calls = stand_in_pulumi(world.tmp, monkeypatch, 0)
    base = git(world.repo, "rev-parse", "HEAD")
    head = commit(world.repo, *edit, NEW_GUEST, BLOCK_VPS)  # with notices that must not go
    assert main(world.apply(base, head, "--pulumi-dir", str(world.tmp))) == 1
    captured = capsys.readouterr()
    assert reason in captured.err and "refused; nothing applied" in captured.err
    assert captured.out == ""
    assert not calls.exists() and list(world.marks.iterdir()) == []
    assert world.mails(0) == [] and not world.state.exists()


def test_apply_refuses_a_working_tree_that_is_not_the_target(
    world: World, seed: str, capsys: pytest.CaptureFixture[str]
) -> None:
    base = git(world.repo, "rev-parse", "HEAD")
    head = commit(world.repo, BLOCK_VPS)
    git(world.repo, "checkout", "-q", base)
    assert main(world.apply(base, head, "--skip-pulumi")) == 1
    assert "check out" in capsys.readouterr().err and world.mails(0) == []


# --- nightly -----------------------------------------------------------------------------------


def nightly(world: World, now: str, *extra: str) -> list[str]:
    return ["deploy", "nightly", str(world.repo / "fleet.yml"), "--now", now, "--state-dir",
            str(world.state), "--ansible-dir", str(world.ansible), "--relay-address",
            "127.0.0.1", "--relay-ca", str(world.tmp / "sink" / "cert.pem"), *extra]


def test_nightly_applies_the_ends_time_brought_once(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls = stand_in_pulumi(world.tmp, monkeypatch, 0)
    commit(world.repo, BLOCK_VPS)  # blocked 2026-11-23T10:00Z until 2026-11-24T10:00Z
    pulumi = ("--pulumi-dir", str(world.tmp))
    # the night before the end: nothing ended since the merge's apply (12:00)
    assert main(nightly(world, "2026-11-24T02:00:00Z", "--since", "2026-11-23T12:00:00Z",
                        *pulumi)) == 0
    assert "nothing to do" in capsys.readouterr().out and not calls.exists()
    # the next night: the block ended at 10:00 in between -> the filter is redefined
    assert main(nightly(world, "2026-11-25T02:00:00Z", *pulumi)) == 0
    out = capsys.readouterr().out
    assert "guest bravo-vps: smtp_block_lifted (M6)" in out and "expired_at 2026-11-24T10:00:00Z" \
        in out
    assert "2026-11-24T02:00:00Z -> 2026-11-25T02:00:00Z" in out  # from the recorded last run
    assert calls.read_text().count("up --yes") == 1
    # run again: the last run is now 2026-11-25T02:00Z; nothing ended since
    assert main(nightly(world, "2026-11-25T03:00:00Z", *pulumi)) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert calls.read_text().count("up --yes") == 1
    assert world.mails(0) == []  # the end of a block is no notice of its own


def test_nightly_does_not_record_a_failed_run(
    world: World, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in_pulumi(world.tmp, monkeypatch, 1)
    commit(world.repo, BLOCK_VPS)
    args = nightly(world, "2026-11-25T02:00:00Z", "--since", "2026-11-24T02:00:00Z",
                   "--pulumi-dir", str(world.tmp))
    assert main(args) == 1
    assert "pulumi up of stack lab failed" in capsys.readouterr().err
    assert not (world.state / "nightly.json").exists()  # the next night tries again


@pytest.mark.parametrize(
    ("name", "withheld"),
    [("VPSFLEET_PASSWORD_SEED", True), ("PULUMI_CONFIG_PASSPHRASE", True),
     ("CI_JOB_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True), ("SSH_PRIVATE_KEY", True),
     ("BACKUP_KEY", True), ("PULUMI_CONFIG_PASSPHRASE_FILE", False),
     ("ANSIBLE_VAULT_PASSWORD_FILE", False), ("SSH_AUTH_SOCK", False), ("PATH", False),
     ("ANSIBLE_HOST_KEY_CHECKING", False), ("HOME", False)],
)
def test_which_variables_the_playbooks_do_not_get(name: str, withheld: bool) -> None:
    assert is_secret_name(name) is withheld
