"""vpsfleet.lab_pipeline, the lab's GitOps demo (issue 13 part 4), without the lab: the merge made
with the real commands in a throwaway repository, the checks of the notices (real notices, the
relay faked at its boundary), what decides that a second apply sent and changed nothing, and the
search for secrets in the state directory. The real run is `make lab`'s (docs/lab.md)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import os
import secrets
from email.message import EmailMessage
from pathlib import Path

import pytest

from vpsfleet import lab, lab_pipeline
from vpsfleet.access_codes import initial_password
from vpsfleet.deploy_changes import changes_between
from vpsfleet.deploy_plan import build_plan
from vpsfleet.fleet import Fleet
from vpsfleet.lab_pipeline import DemoFailed, Scenario
from vpsfleet.loader import load_fleet
from vpsfleet.notices.record import Record
from vpsfleet.notices.sender import send_notices

ROOT = Path(__file__).resolve().parents[2]
LAB = ROOT / "inventories" / "lab" / "fleet.yml"
NOW = dt.datetime(2026, 12, 4, 9, 30, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def fleet() -> Fleet:
    return load_fleet(LAB, today=NOW.date())


def test_the_scenario_tells_customers_of_both_languages(fleet: Fleet) -> None:
    scenario = lab_pipeline.pick(fleet, NOW)
    assert scenario.new_guest == "alpha-shop" and scenario.offer == "managed"
    assert (scenario.blocked, scenario.suspended) == ("bravo-vps", "bravo-dev")

    def language(guest: str) -> str:
        g = fleet.guest(guest)
        assert g is not None
        c = fleet.customer(g.customer)
        assert c is not None
        return c.language

    customer = fleet.customer(scenario.customer)
    assert customer is not None
    languages = {customer.language, language(scenario.blocked), language(scenario.suspended)}
    assert languages == {"fr", "en"}
    # the block and the suspension touch guests whose root is the customer: Pulumi's alone
    for name in (scenario.blocked, scenario.suspended):
        guest = fleet.guest(name)
        assert guest is not None
        offer = fleet.offer(guest.offer)
        assert offer is not None and offer.root == "customer"


@pytest.fixture(scope="module")
def merge(fleet: Fleet, tmp_path_factory: pytest.TempPathFactory) -> lab_pipeline.Merge:
    repo = tmp_path_factory.mktemp("pipeline") / "fleet"
    return lab_pipeline.make_merge(LAB, LAB.parent / "vpsfleet.yml", repo,
                                   lab_pipeline.pick(fleet, NOW), NOW)


def test_the_merge_is_two_commits_made_with_the_commands(fleet: Fleet,
                                                         merge: lab_pipeline.Merge) -> None:
    assert lab_pipeline.git(merge.repo, "rev-list", "--count", "HEAD") == "2"
    assert (merge.repo / "vpsfleet.yml").read_text() == (LAB.parent / "vpsfleet.yml").read_text()
    assert lab_pipeline.git(merge.repo, "show", f"{merge.rev_a}:fleet.yml") + "\n" == LAB.read_text()
    # ipam allocate gave the lowest free address of the pool: none of the lab's
    taken = {str(g.ipv4) for g in fleet.live_guests()} | {str(s.ipv4) for s in fleet.dedicated_servers}
    assert merge.address not in taken and merge.address.startswith("198.51.100.")
    assert any("allocated" in line for line in merge.said)
    before = load_fleet(LAB, today=NOW.date())
    after = load_fleet(merge.repo / "fleet.yml", today=NOW.date())
    kinds = sorted((c.machine, c.kind.value) for c in changes_between(before, after, now=NOW))
    assert kinds == [("alpha-shop", "guest_added"), ("bravo-dev", "guest_suspended"),
                     ("bravo-vps", "smtp_block_placed")]
    # the lab can lay the new guest out (its pool), as lab.sh does the others
    plan = lab.plan(after, ipaddress.IPv4Address("198.51.100.3"))
    assert any(m.name == "alpha-shop" and str(m.ipv4) == merge.address for m in plan.guests)


class FakeRelay:
    """The relay's boundary: what would have reached the sink, as the sink keeps it (bytes)."""

    def __init__(self) -> None:
        self.sent: list[bytes] = []

    def send(self, message: EmailMessage) -> None:
        self.sent.append(bytes(message))


class Sent:
    def __init__(self, mails: list[EmailMessage], record: list[dict[str, str]], password: str,
                 expected: list[lab_pipeline.Expected], operations: str) -> None:
        self.mails, self.record, self.password = mails, record, password
        self.expected, self.operations = expected, operations

    def check(self, mails: list[EmailMessage] | None = None) -> list[lab_pipeline.Checked]:
        return lab_pipeline.check_mails(self.mails if mails is None else mails, self.expected,
                                        self.operations, self.record)


@pytest.fixture
def sent(fleet: Fleet, merge: lab_pipeline.Merge, tmp_path: Path) -> Sent:
    """The merge's notices as `apply` renders and sends them, through a fake relay."""
    after = load_fleet(merge.repo / "fleet.yml", today=NOW.date())
    changes = changes_between(fleet, after, now=NOW)
    plan = build_plan(fleet, after, changes, source="fleet.yml", from_rev=merge.rev_a,
                      to_rev=merge.rev_b)
    seed = secrets.token_urlsafe(24)
    relay = FakeRelay()
    outcome = send_notices(plan, after, Record(tmp_path), relay, lambda: seed,  # type: ignore[arg-type]
                           lambda _line: None)
    assert outcome.sent == 3
    record = list(json.loads((tmp_path / "notices.json").read_text())["sent"].values())
    password = initial_password(seed, after.environment, "alpha-shop")
    scenario = lab_pipeline.pick(fleet, NOW)
    expected = lab_pipeline.expected_notices(fleet, after, scenario, password)
    return Sent([lab_pipeline.parse_mail(raw) for raw in relay.sent], record, password, expected,
                after.provider.operations_email)


def test_the_three_notices_pass_the_checks(sent: Sent, merge: lab_pipeline.Merge) -> None:
    checked = sent.check()
    assert [(c.kind, c.machine, c.recipient, c.language) for c in checked] == [
        ("access_codes", "alpha-shop", "admin@alpha.example.com", "fr"),
        ("smtp_block", "bravo-vps", "it@bravo.example.org", "en"),
        ("network_cut", "bravo-dev", "it@bravo.example.org", "en"),
    ]
    assert checked[0].copy == "a copy without the password"
    # the facts checked are the fleet's: the address, the block's start, duration and end
    facts = {e.kind: e.facts for e in sent.expected}
    assert merge.address in facts["access_codes"]
    assert "24 hours" in facts["smtp_block"]
    assert "5 December 2026, 09:30 UTC" in facts["smtp_block"]
    assert "4 December 2026" in facts["network_cut"]


def test_a_missing_notice_is_reported(sent: Sent) -> None:
    without = [m for m in sent.mails if m["X-Vpsfleet-Notice"] != "network_cut"]
    with pytest.raises(DemoFailed, match="network_cut for bravo-dev: 0 mails"):
        sent.check(without)


def test_a_notice_in_the_wrong_language_is_reported(sent: Sent) -> None:
    mails = sent.mails
    smtp = next(m for m in mails if m["X-Vpsfleet-Notice"] == "smtp_block")
    smtp.replace_header("Content-Language", "fr")
    with pytest.raises(DemoFailed, match="smtp_block for bravo-vps: in fr, the customer reads en"):
        sent.check(mails)


def test_a_fact_the_mail_does_not_say_is_reported(sent: Sent) -> None:
    wrong = [lab_pipeline.Expected(e.kind, e.machine, e.recipient, e.language,
                                   (*e.facts, "48 hours") if e.kind == "smtp_block" else e.facts,
                                   e.secret) for e in sent.expected]
    with pytest.raises(DemoFailed, match="does not say 48 hours"):
        lab_pipeline.check_mails(sent.mails, wrong, sent.operations, sent.record)


def test_a_password_in_the_operations_copy_is_reported(sent: Sent) -> None:
    mails = sent.mails
    copy = next(m for m in mails if sent.operations in str(m["To"]))
    part = copy.get_body(preferencelist=("plain",))
    assert isinstance(part, EmailMessage)
    part.set_content(part.get_content() + f"\n{sent.password}\n")
    with pytest.raises(DemoFailed, match="operations' copy shows the password"):
        sent.check(mails)


def test_a_subject_other_than_the_record_s_is_reported(sent: Sent) -> None:
    mails = sent.mails
    cut = next(m for m in mails if m["X-Vpsfleet-Notice"] == "network_cut")
    cut.replace_header("Subject", "VPS bravo-dev: something else")
    with pytest.raises(DemoFailed, match="network_cut for bravo-dev: subject"):
        sent.check(mails)


def test_a_notice_sent_twice_is_reported(sent: Sent) -> None:
    twice = [*sent.mails, next(m for m in sent.mails if m["X-Vpsfleet-Notice"] == "smtp_block")]
    with pytest.raises(DemoFailed, match="smtp_block for bravo-vps: 2 mails"):
        sent.check(twice)


def test_other_mails_in_the_sink_are_not_notices(sent: Sent) -> None:
    ticket = EmailMessage()
    ticket["To"] = "support@lab.example.net"
    ticket["Subject"] = "[vpsfleet-alert] FIRING ProbeDown guest=alpha-shop"
    ticket.set_content("down")
    reboot = EmailMessage()  # a managed guest's own notice before a reboot (M14)
    reboot["To"] = "admin@alpha.example.com"
    reboot["X-Vpsfleet-Notice"] = "restart"
    reboot["Subject"] = "alpha-shop: restart"
    reboot.set_content("restart")
    assert len(sent.check([*sent.mails, ticket, reboot])) == 3


# --- the second apply ----------------------------------------------------------------------------


APPLY_OUTPUT = """\
4. customer notices (3), through the relay relay.lab.example.net:587, record /x/notices.json
   notice access_codes for alpha-shop: sent already on 2026-12-04T09:31:00Z (<a@lab>)
   {sent} sent, {already} sent already
deploy done.
"""


def test_the_notice_count_is_read_from_apply() -> None:
    assert lab_pipeline.notices_sent(APPLY_OUTPUT.format(sent=0, already=3)) == (0, 3)
    assert lab_pipeline.notices_sent(APPLY_OUTPUT.format(sent=3, already=0)) == (3, 0)
    assert lab_pipeline.notices_sent("2. ansible: no host to configure\ndeploy done.\n") == (0, 0)


def test_a_second_apply_that_sends_or_changes_fails() -> None:
    lab_pipeline.judge_second_apply(0, 3, 0, {"alpha-shop": 0, "labstore1": 0}, 3)
    with pytest.raises(DemoFailed, match="sent 1 notices"):
        lab_pipeline.judge_second_apply(1, 2, 1, {}, 3)
    with pytest.raises(DemoFailed, match="1 in the sink"):
        lab_pipeline.judge_second_apply(0, 3, 1, {}, 3)
    with pytest.raises(DemoFailed, match="0 of 3 sent already"):  # the record was lost
        lab_pipeline.judge_second_apply(0, 0, 0, {}, 3)
    with pytest.raises(DemoFailed, match=r"changed labmon1 \(2\)"):
        lab_pipeline.judge_second_apply(0, 3, 0, {"labmon1": 2, "labstore1": 0}, 3)


def stats_event(folder: Path, changed: dict[str, int]) -> None:
    events = folder / "job_events"
    events.mkdir(parents=True)
    (events / "1-a.json").write_text(json.dumps({"event": "playbook_on_start"}))
    (events / "9-b.json").write_text(json.dumps({"event": "playbook_on_stats",
                                                 "event_data": {"changed": changed}}))


def test_changed_hosts_come_from_the_runs_artifacts(tmp_path: Path) -> None:
    old = tmp_path / "ansible" / "site" / "artifacts" / "old"
    stats_event(old, {"labmon1": 5})
    os.utime(old, (1000, 1000))
    stats_event(tmp_path / "ansible" / "site" / "artifacts" / "new", {"alpha-shop": 0, "labmon1": 1})
    stats_event(tmp_path / "ansible" / "handover" / "artifacts" / "new", {"bravo-x": 2})
    assert lab_pipeline.changed_hosts(tmp_path, since=2000) == {"alpha-shop": 0, "labmon1": 1,
                                                                 "bravo-x": 2}


def test_secrets_are_searched_in_every_file(tmp_path: Path) -> None:
    (tmp_path / "ansible" / "site" / "artifacts" / "1").mkdir(parents=True)
    (tmp_path / "apply-1.log").write_text("deploy done.\n")
    (tmp_path / "ansible" / "site" / "artifacts" / "1" / "stdout").write_text("x Sekr3tPassw0rd y")
    assert lab_pipeline.files_holding(tmp_path, ["Sekr3tPassw0rd", ""]) == [
        "ansible/site/artifacts/1/stdout"]
    assert lab_pipeline.files_holding(tmp_path, ["absent"]) == []


def test_the_new_guest_s_container_is_the_lab_s_other_containers(tmp_path: Path) -> None:
    command = lab.container_command(tmp_path, "localhost/img", "lab-alpha-shop", "alpha-shop",
                                    "lab-public", "198.51.100.5")
    assert command[:3] == ["podman", "run", "-d"]
    assert command[command.index("--network") + 1] == "vpsfleet-lab-lab-public"
    assert command[command.index("--ip") + 1] == "198.51.100.5"
    assert f"{tmp_path}/seeds/alpha-shop:/var/lib/cloud/seed/nocloud:ro" in command
    assert command[-2:] == ["localhost/img", "/sbin/init"]


def test_the_guest_entry_goes_last_of_the_guests() -> None:
    text = LAB.read_text()
    scenario = Scenario("alpha-shop", "c-alpha", "managed", "vps-s", "labhv1", "debian-12",
                        "bravo-vps", "bravo-dev")
    edited = lab_pipeline.insert_guest(text, scenario.guest_entry(NOW.date()))
    assert "    ipv4: 198.51.100.13\n  - name: alpha-shop" in edited
    assert "    image: debian-12\n\nbackup_stores:\n" in edited
    with pytest.raises(DemoFailed):
        lab_pipeline.insert_guest("guests: []\n", scenario.guest_entry(NOW.date()))


def test_the_demo_reads_the_sink_over_ssh_never_through_podman() -> None:
    source = (ROOT / "vpsfleet" / "lab_pipeline.py").read_text()
    assert "podman exec" not in source and '"exec"' not in source
    assert "authorized_keys" not in source  # the new guest's keys come from its seed


def test_an_ssh_command_that_hangs_is_a_demo_failure_not_a_traceback(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sink that accepts the connection and never answers (a session stuck in its PAM stack)
    stops the demo with what it waited for."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "ssh").write_text("#!/bin/sh\nexec sleep 30\n")
    (bin_dir / "ssh").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    sink = lab_pipeline.SshSink("198.51.100.3", tmp_path / "key", tmp_path / "known_hosts")
    with pytest.raises(DemoFailed, match=r"ssh 198\.51\.100\.3 cat /x: no answer in 0\.5 s"):
        sink.ssh("cat /x", timeout=0.5)
