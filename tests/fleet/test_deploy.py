"""`vpsfleet deploy plan`: the changes between two fleets and the steps a merge takes (issue 13)."""

from __future__ import annotations

import datetime as dt
import json
import shutil
import subprocess
from pathlib import Path

import pytest

from vpsfleet.cli import main
from vpsfleet.deploy_changes import DEDICATED, INVERSE, Change, Kind, changes_between
from vpsfleet.deploy_plan import DeployPlan, build_plan
from vpsfleet.fleet import Fleet
from vpsfleet.loader import load_fleet

from .conftest import REPO, TODAY

NOW = dt.datetime(2026, 11, 23, 12, 0, tzinfo=dt.UTC)
LAB = (REPO / "inventories" / "lab" / "fleet.yml").read_text()

# Edits of the lab fleet, each a (old text, new text) replacement.
SUSPEND_DEV = ("    ipv4: 198.51.100.13\n",
               "    ipv4: 198.51.100.13\n    state: suspended\n    suspended_on: 2026-11-23\n")
BLOCK_VPS = ("    ipv4: 198.51.100.12\n",
             "    ipv4: 198.51.100.12\n    smtp_blocks:\n"
             "      - {blocked_at: 2026-11-23T10:00:00Z, until: 2026-11-24T10:00:00Z, "
             "reason: spam reported}\n")
MITIGATE_APP = ("    maintenance_window: \"05:30\"\n",
                "    maintenance_window: \"05:30\"\n"
                "    mitigation: {since: 2026-11-23T09:00:00Z, profile: web}\n")
RESIZE_APP = ("    plan: vps-s\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.11",
              "    plan: vps-m\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.11")
WINDOW_WEB = ("maintenance_window: \"05:00\"", "maintenance_window: \"04:00\"")
TERMINATE_DEV = ("    ipv4: 198.51.100.13\n",
                 "    ipv4: 198.51.100.13\n    state: terminated\n    terminated_on: 2026-11-23\n")
DELIVER_DEDI = ("    paid_on: 2026-12-01  # M12: due 7 days after payment\n",
                "    paid_on: 2026-12-01\n    delivered_on: 2026-12-01\n")
NEW_GUEST = ("backup_stores:\n",
             "  - name: bravo-new\n    created: 2026-11-23\n    customer: c-bravo\n"
             "    offer: unmanaged-backup\n    plan: vps-s\n    host: labhv1\n"
             "    image: debian-12\n    ipv4: 198.51.100.14\n\nbackup_stores:\n")
NEW_MANAGED = ("backup_stores:\n",
               "  - name: alpha-new\n    created: 2026-11-23\n    customer: c-alpha\n"
               "    offer: managed\n    plan: vps-s\n    host: labhv1\n"
               "    image: debian-12\n    ipv4: 198.51.100.15\n\nbackup_stores:\n")
NEW_DEDICATED = ("dedicated_servers:\n",
                 "dedicated_servers:\n"
                 "  - name: alpha-dedi9\n    datacenter: lab-a\n    ipv4: 198.51.100.59\n"
                 "    customer: c-alpha\n    offer: dedicated\n    paid_on: 2026-11-20\n")


def edited(*edits: tuple[str, str], text: str = LAB) -> str:
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


def fleet_of(tmp_path: Path, text: str, name: str = "fleet.yml") -> Fleet:
    path = tmp_path / name
    path.write_text(text)
    return load_fleet(path, today=TODAY)


def changes(tmp_path: Path, *edits: tuple[str, str]) -> tuple[Change, ...]:
    before = fleet_of(tmp_path, LAB, "before.yml")
    after = fleet_of(tmp_path, edited(*edits), "after.yml")
    return changes_between(before, after, now=NOW)


def kinds(found: tuple[Change, ...]) -> list[tuple[str, Kind]]:
    return [(c.machine, c.kind) for c in found]


# --- the change computation --------------------------------------------------------------------


def test_the_same_fleet_has_no_change(tmp_path: Path) -> None:
    assert changes(tmp_path) == ()


@pytest.mark.parametrize(
    ("edit", "machine", "kind", "promise"),
    [
        (SUSPEND_DEV, "bravo-dev", Kind.GUEST_SUSPENDED, "M7"),
        (BLOCK_VPS, "bravo-vps", Kind.SMTP_BLOCK_PLACED, "M6"),
        (MITIGATE_APP, "alpha-app", Kind.MITIGATION_STARTED, "M28"),
        (RESIZE_APP, "alpha-app", Kind.PLAN_CHANGED, "M9"),
        (WINDOW_WEB, "alpha-web", Kind.GUEST_CHANGED, "M1"),
        (TERMINATE_DEV, "bravo-dev", Kind.GUEST_TERMINATED, "M11"),
        (DELIVER_DEDI, "bravo-dedi", Kind.DEDICATED_DELIVERED, "M12"),
        (NEW_GUEST, "bravo-new", Kind.GUEST_ADDED, "M4"),
        (NEW_DEDICATED, "alpha-dedi9", Kind.DEDICATED_ADDED, "M12"),
    ],
)
def test_each_kind_of_change(tmp_path: Path, edit: tuple[str, str], machine: str, kind: Kind,
                             promise: str) -> None:
    found = changes(tmp_path, edit)
    assert kinds(found)[-1] == (machine, kind)
    assert found[-1].promise == promise
    # and its inverse, from the edited fleet back to the lab's
    before = fleet_of(tmp_path, edited(edit), "b.yml")
    after = fleet_of(tmp_path, LAB, "a.yml")
    assert (machine, INVERSE[kind]) in kinds(changes_between(before, after, now=NOW))


def test_facts_of_the_changes(tmp_path: Path) -> None:
    found = {c.kind: c for c in changes(tmp_path, BLOCK_VPS, MITIGATE_APP, RESIZE_APP, WINDOW_WEB,
                                        TERMINATE_DEV, DELIVER_DEDI)}
    block = found[Kind.SMTP_BLOCK_PLACED]
    assert block.fact("duration_hours") == "24" and block.fact("block_number") == "1"
    assert block.fact("until") == "2026-11-24T10:00:00Z"
    mitigation = found[Kind.MITIGATION_STARTED]
    assert mitigation.fact("minimum_hours") == "24"  # policy.mitigation.minimum_hours
    assert mitigation.fact("earliest_end") == "2026-11-24T09:00:00Z"
    plan = found[Kind.PLAN_CHANGED]
    assert (plan.fact("old_plan"), plan.fact("new_plan")) == ("vps-s", "vps-m")
    assert plan.fact("disk_gb") == "20 -> 40"
    assert plan.fact("done_within_hours") == "48"  # policy.plan_change_max_hours
    window = found[Kind.GUEST_CHANGED]
    assert [(f.name, f.old, f.new) for f in window.fields] == [
        ("maintenance_window", "05:00", "04:00")]
    assert found[Kind.GUEST_TERMINATED].fact("backups_erased_on") == "2026-11-23"
    delivered = found[Kind.DEDICATED_DELIVERED]
    assert (delivered.fact("due_on"), delivered.fact("on_time")) == ("2026-12-08", "yes")


def test_several_changes_at_once_in_a_fixed_order(tmp_path: Path) -> None:
    found = changes(tmp_path, DELIVER_DEDI, NEW_GUEST, SUSPEND_DEV, BLOCK_VPS, MITIGATE_APP,
                    RESIZE_APP)
    assert kinds(found) == [
        ("alpha-app", Kind.PLAN_CHANGED),
        ("alpha-app", Kind.MITIGATION_STARTED),
        ("bravo-dev", Kind.GUEST_SUSPENDED),
        ("bravo-new", Kind.GUEST_ADDED),
        ("bravo-vps", Kind.SMTP_BLOCK_PLACED),
        ("bravo-dedi", Kind.DEDICATED_DELIVERED),
    ]


def test_an_expired_block_is_no_change_of_a_merge_but_of_time(tmp_path: Path) -> None:
    blocked = fleet_of(tmp_path, edited(BLOCK_VPS), "b.yml")
    later = NOW + dt.timedelta(days=2)
    assert changes_between(blocked, blocked, now=later) == ()
    # the nightly run compares one fleet at two instants
    ended = changes_between(blocked, blocked, before_now=NOW, now=later)
    assert kinds(ended) == [("bravo-vps", Kind.SMTP_BLOCK_LIFTED)]
    assert ended[0].fact("expired_at") == "2026-11-24T10:00:00Z"


def test_a_lift_says_who_lifted_it_and_why(tmp_path: Path) -> None:
    lifted = (
        "reason: spam reported}\n",
        "reason: spam reported, lifted_at: 2026-11-23T11:00:00Z, lift_reason: cleaned}\n",
    )
    before = fleet_of(tmp_path, edited(BLOCK_VPS), "b.yml")
    after = fleet_of(tmp_path, edited(BLOCK_VPS, lifted), "a.yml")
    (lift,) = changes_between(before, after, now=NOW)
    assert lift.kind is Kind.SMTP_BLOCK_LIFTED
    assert (lift.fact("lifted_at"), lift.fact("lift_reason")) == ("2026-11-23T11:00:00Z",
                                                                    "cleaned")


# --- the steps ---------------------------------------------------------------------------------


def plan_of(tmp_path: Path, *edits: tuple[str, str]) -> DeployPlan:
    before = fleet_of(tmp_path, LAB, "before.yml")
    after = fleet_of(tmp_path, edited(*edits), "after.yml")
    return build_plan(before, after, changes_between(before, after, now=NOW), source="lab",
                      from_rev="A", to_rev="B")


def test_steps_of_a_new_unmanaged_backup_client(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, NEW_GUEST)
    assert plan.pulumi is not None and plan.pulumi.stack == "lab"
    assert [r.machine for r in plan.pulumi.reasons] == ["bravo-new"]
    # unmanaged: site.yml does not configure it, but its store gets its account, and the
    # monitor a new target; handover.yml gives it to its customer
    assert [(r.playbook, r.limit) for r in plan.playbooks] == [
        ("site.yml", ("labstore1", "labmon1")), ("handover.yml", ("bravo-new",))]
    (notice,) = plan.notices
    assert (notice.kind, notice.customer, notice.language) == ("access_codes", "c-bravo", "en")


def test_steps_of_filter_only_changes(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, BLOCK_VPS, MITIGATE_APP)
    assert plan.pulumi is not None
    assert {r.machine for r in plan.pulumi.reasons} == {"bravo-vps", "alpha-app"}
    # alpha-app is managed: site.yml; no store or monitor target changes
    assert [(r.playbook, r.limit) for r in plan.playbooks] == [("site.yml", ("alpha-app",))]
    assert [(n.kind, n.machine, n.language) for n in plan.notices] == [
        ("mitigation_start", "alpha-app", "fr"), ("smtp_block", "bravo-vps", "en")]


def test_steps_of_a_suspension_a_termination_and_a_delivery(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, SUSPEND_DEV, DELIVER_DEDI)
    assert [(r.playbook, r.limit) for r in plan.playbooks] == [
        ("site.yml", ("labmon1",)), ("handover.yml", ("bravo-dedi",))]
    assert [n.kind for n in plan.notices] == ["network_cut", "dedicated_available"]
    plan = plan_of(tmp_path, TERMINATE_DEV)
    assert plan.pulumi is not None and "unprotect" in plan.pulumi.reasons[0].effect
    assert [n.kind for n in plan.notices] == ["termination"]


def test_a_managed_guest_change_limits_site_to_it(tmp_path: Path) -> None:
    plan = plan_of(tmp_path, WINDOW_WEB)
    assert plan.pulumi is None  # a maintenance window is Ansible's
    assert [(r.playbook, r.limit) for r in plan.playbooks] == [("site.yml", ("alpha-web",))]
    assert plan.notices == ()


# --- the command, on a throwaway repository ----------------------------------------------------


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@example.com", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A fleet repository: the lab fleet, committed."""
    shutil.copy(REPO / "inventories" / "lab" / "fleet.yml", tmp_path / "fleet.yml")
    git(tmp_path, "init", "-q")
    git(tmp_path, "add", "fleet.yml")
    git(tmp_path, "commit", "-qm", "base")
    return tmp_path


def commit(repo: Path, *edits: tuple[str, str]) -> str:
    path = repo / "fleet.yml"
    path.write_text(edited(*edits, text=path.read_text()))
    git(repo, "commit", "-qam", "change")
    return git(repo, "rev-parse", "HEAD")


def plan_cli(repo: Path, *args: str) -> list[str]:
    return ["deploy", "plan", str(repo / "fleet.yml"), *args, "--now", NOW.isoformat()]


def test_cli_text_plan_of_a_merge(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = git(repo, "rev-parse", "HEAD")
    head = commit(repo, NEW_GUEST, BLOCK_VPS, SUSPEND_DEV)
    assert main(plan_cli(repo, "--from", base, "--to", head)) == 0
    out = capsys.readouterr().out
    assert "bravo-new: guest_added (M4)" in out
    assert "pulumi up, stack lab (pulumi/Pulumi.lab.yaml)" in out
    assert "ansible-playbook playbooks/site.yml --limit labstore1,labmon1" in out
    assert "ansible-playbook playbooks/handover.yml --limit bravo-new" in out
    assert "network_cut for bravo-dev to c-bravo <it@bravo.example.org>, in en (M7)" in out


def test_cli_json_plan_and_the_working_tree(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = repo / "fleet.yml"
    path.write_text(edited(RESIZE_APP, text=path.read_text()))  # not committed
    assert main(plan_cli(repo, "--from", "HEAD", "--format", "json")) == 0
    plan = json.loads(capsys.readouterr().out)
    assert sorted(plan) == ["ansible", "changes", "environment", "fleet", "from", "nothing_to_do",
                            "notices", "pulumi", "to"]
    assert plan["to"] == "WORKTREE" and plan["nothing_to_do"] is False
    (change,) = plan["changes"]
    assert change["kind"] == "plan_changed" and change["promise"] == "M9"
    assert change["facts"]["new_plan"] == "vps-m"
    assert plan["notices"] == [{"kind": "plan_change_done", "machine": "alpha-app",
                                "customer": "c-alpha", "email": "admin@alpha.example.com",
                                "language": "fr", "promise": "M9"}]


def test_cli_nothing_to_do(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(plan_cli(repo, "--from", "HEAD", "--to", "HEAD")) == 0
    assert "nothing to do" in capsys.readouterr().out


def test_cli_a_revert_plans_the_inverse(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = git(repo, "rev-parse", "HEAD")
    head = commit(repo, SUSPEND_DEV, BLOCK_VPS)
    assert main(plan_cli(repo, "--from", head, "--to", base, "--format", "json")) == 0
    found = [(c["machine"], c["kind"]) for c in json.loads(capsys.readouterr().out)["changes"]]
    assert found == [("bravo-dev", "guest_resumed"), ("bravo-vps", "smtp_block_lifted")]


@pytest.mark.parametrize(
    ("edit", "reason"),
    [
        # M10: lab-b has no host in the lab; add one so the move is valid on its own
        ((("hosts:\n", "hosts:\n  - name: labhv2\n    datacenter: lab-b\n    uri: qemu:///system\n"
           "    domain_type: qemu\n    capacity: {vcpu: 2, ram_mb: 8192, disk_gb: 200}\n"
           "    overcommit: {cpu: 4.0, ram: 1.5}\n    bridge: br-lab\n"
           "    images: {debian-12: debian-12-genericcloud-amd64.qcow2}\n"),
          ("    plan: vps-s\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.13",
           "    plan: vps-s\n    host: labhv2\n    image: debian-12\n    ipv4: 203.0.113.13")),
         "guests[3].host: moves bravo-dev from datacenter lab-a to lab-b: the datacenter choice "
         "is final (M10)"),
        (((WINDOW_WEB[0], WINDOW_WEB[0]),
          ("    plan: vps-m\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.10",
           "    plan: vps-s\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.10")),
         "guests[0].plan: plan vps-s would shrink alpha-web's disk from 40 GB to 20 GB: a disk "
         "only grows (M9)"),
    ],
)
def test_cli_refuses_what_validate_against_refuses(
    repo: Path, capsys: pytest.CaptureFixture[str], edit: tuple[tuple[str, str], ...], reason: str
) -> None:
    base = git(repo, "rev-parse", "HEAD")
    head = commit(repo, *edit)
    assert main(plan_cli(repo, "--from", base, "--to", head)) == 1
    captured = capsys.readouterr()
    assert captured.out == ""  # nothing planned
    assert reason in captured.err
    assert "refused; nothing planned" in captured.err


def test_cli_refuses_an_invalid_fleet_with_every_location(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = repo / "fleet.yml"
    path.write_text(edited(("plan: vps-s\n", "plan: vps-xl\n"), ("image: debian-12\n",
                                                                  "image: debian-13\n"),
                           text=path.read_text()))
    assert main(plan_cli(repo, "--from", "HEAD")) == 1
    err = capsys.readouterr().err
    assert "guests[0].image: image 'debian-13' is not on host labhv1" in err
    assert "guests[1].plan: unknown plan 'vps-xl'" in err
    assert "Traceback" not in err


def test_cli_a_bad_revision_is_a_usage_error(repo: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    assert main(plan_cli(repo, "--from", "no-such-rev")) == 2
    assert "is not a commit" in capsys.readouterr().err


# --- dedicated servers at the edge (004: M6, M7, M28) -------------------------------------------

EDGE_ROUTER = "labedge1"  # lab-a's, in the lab fleet
CUT_AND_BLOCK_DEDI = ("    delivered_on: 2026-11-06  # within the 7 days (M12)\n",
                      "    delivered_on: 2026-11-06\n    state: suspended\n"
                      "    suspended_on: 2026-11-23\n    smtp_blocks:\n"
                      "      - {blocked_at: 2026-11-23T10:00:00Z, until: 2026-11-24T10:00:00Z, "
                      "reason: spam reported}\n")


def test_a_dedicated_servers_cut_and_block_go_to_its_edge_router(tmp_path: Path) -> None:
    before = fleet_of(tmp_path, LAB, "before.yml")
    after = fleet_of(tmp_path, edited(CUT_AND_BLOCK_DEDI), "after.yml")
    found = changes_between(before, after, now=NOW)
    assert [(c.machine, c.machine_kind, c.kind) for c in found] == [
        ("alpha-dedi", DEDICATED, Kind.GUEST_SUSPENDED),
        ("alpha-dedi", DEDICATED, Kind.SMTP_BLOCK_PLACED)]
    plan = build_plan(before, after, found, source="lab", from_rev="A", to_rev="B")
    assert plan.pulumi is None  # no hypervisor in front of a dedicated server
    # the router alone: a delivered server is the customer's (no play touches it, M13)
    assert [(r.playbook, r.limit) for r in plan.playbooks] == [("site.yml", (EDGE_ROUTER,))]
    assert [(n.kind, n.machine, n.customer) for n in plan.notices] == [
        ("network_cut", "alpha-dedi", "c-alpha"), ("smtp_block", "alpha-dedi", "c-alpha")]
    # the revert lifts both, and the router is in the limit again
    back = changes_between(after, before, now=NOW)
    assert [c.kind for c in back] == [Kind.GUEST_RESUMED, Kind.SMTP_BLOCK_LIFTED]


def test_a_plan_change_reconfigures_the_guests_hypervisor(tmp_path: Path) -> None:
    """Its quota job's traffic.json lists the host's guests and plans (role hypervisor, M8)."""
    text = (REPO / "inventories" / "example-production" / "fleet.yml").read_text()
    old = "    plan: vps-s\n    host: hv-par1-01\n    image: debian-12\n    ipv4: 192.0.2.20\n"
    assert old in text
    before = fleet_of(tmp_path, text, "before.yml")
    after = fleet_of(tmp_path, text.replace(old, old.replace("vps-s", "vps-m")), "after.yml")
    plan = build_plan(before, after, changes_between(before, after, now=NOW), source="p",
                      from_rev="A", to_rev="B")
    (site,) = [r for r in plan.playbooks if r.playbook == "site.yml"]
    assert "hv-par1-01" in site.limit and "traffic quota job" in site.why
    assert "hv-par1-02" not in site.limit
