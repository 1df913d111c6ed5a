"""The GitLab pipeline's merge request jobs, run by gitlab-ci-local in a shell (issue 13): a good
change passes and its plan is posted; a change the contracts forbid fails with the reason."""

from __future__ import annotations

import pytest

from .notes_api import NotesApi
from .pipeline import FleetRepo

# Lab fleet edits, each an (old text, new text) replacement.
RESIZE_APP = ("    plan: vps-s\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.11",
              "    plan: vps-m\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.11")
# M10: a second host, in lab-b, so that moving bravo-dev there is valid on its own.
HOST_IN_LAB_B = ("hosts:\n", "hosts:\n  - name: labhv3\n    datacenter: lab-b\n"
                 "    uri: qemu:///system\n    domain_type: qemu\n"
                 "    capacity: {vcpu: 2, ram_mb: 8192, disk_gb: 200}\n"
                 "    overcommit: {cpu: 4.0, ram: 1.5}\n    bridge: br-lab\n"
                 "    images: {debian-12: debian-12-genericcloud-amd64.qcow2}\n")
MOVE_DEV = ("    plan: vps-s\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.13",
            "    plan: vps-s\n    host: labhv3\n    image: debian-12\n    ipv4: 203.0.113.13")
# M9: alpha-web from vps-m (disk_gb 40 in the lab fleet) to vps-s (disk_gb 20).
SHRINK_WEB = ("    plan: vps-m\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.10",
              "    plan: vps-s\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.10")

TOKEN = "glpat-throwaway-for-this-test"  # made up here; no log or artifact may hold it


def merge_request(api: NotesApi) -> dict[str, str]:
    """The variables of a merge request pipeline (!7 of project 42, into main)."""
    return {"CI_PIPELINE_SOURCE": "merge_request_event", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main",
            "CI_MERGE_REQUEST_IID": "7", "CI_PROJECT_ID": "42", "CI_API_V4_URL": api.url,
            "VPSFLEET_GITLAB_TOKEN": TOKEN}


def test_a_good_change_passes_and_its_plan_is_posted(fleet_repo: FleetRepo,
                                                     notes_api: NotesApi) -> None:
    head = fleet_repo.commit(RESIZE_APP)
    run = fleet_repo.run("validate", "plan", variables=merge_request(notes_api))
    assert run.returncode == 0, run.output
    assert run.passed("validate") and run.passed("plan")
    assert "inventories/lab/fleet.yml: valid" in run.output
    plan = fleet_repo.out("plan.txt")
    assert "deploy plan for lab (inventories/lab/fleet.yml), main -> HEAD" in plan
    assert "alpha-app: plan_changed (M9)" in plan
    assert "plan_change_done for alpha-app" in plan
    # posted once on the merge request, with the token, as the artifact says
    (note,) = notes_api.notes
    assert note.path == "/api/v4/projects/42/merge_requests/7/notes"
    assert note.token == TOKEN
    assert note.body == fleet_repo.out("plan.md")
    assert note.body.startswith(f"### vpsfleet deploy plan lab (from main to {head[:7]}")
    assert "alpha-app: plan_changed (M9)" in note.body
    # the token is in no log and no artifact
    assert TOKEN not in run.output
    for path in (fleet_repo.root / "ci-output").rglob("*"):
        assert not path.is_file() or TOKEN not in path.read_text(), path


@pytest.mark.parametrize(
    ("edits", "reason"),
    [
        ((HOST_IN_LAB_B, MOVE_DEV),
         "guests[3].host: moves bravo-dev from datacenter lab-a to lab-b: the datacenter choice "
         "is final (M10)"),
        ((SHRINK_WEB,),
         "guests[0].plan: plan vps-s would shrink alpha-web's disk from 40 GB to 20 GB: a disk "
         "only grows (M9)"),
    ],
    ids=["datacenter-move", "disk-shrink"],
)
def test_a_forbidden_change_fails_with_the_reason(fleet_repo: FleetRepo, notes_api: NotesApi,
                                                  edits: tuple[tuple[str, str], ...],
                                                  reason: str) -> None:
    fleet_repo.commit(*edits)
    run = fleet_repo.run("validate", "plan", variables=merge_request(notes_api))
    assert run.returncode != 0
    assert run.failed("validate") and run.failed("plan")
    validate_lines = [line for line in run.output.splitlines() if line.startswith("validate ")]
    assert any(reason in line for line in validate_lines), run.output
    # plan refuses too, plans nothing, and the refusal is what the merge request is told
    assert fleet_repo.out("plan.txt") == ""
    (note,) = notes_api.notes
    assert "**Refused** (exit 1): nothing will be applied." in note.body
    assert reason in note.body


def test_without_a_token_the_plan_stays_in_the_artifacts(fleet_repo: FleetRepo,
                                                         notes_api: NotesApi) -> None:
    fleet_repo.commit(RESIZE_APP)
    variables = {**merge_request(notes_api), "VPSFLEET_GITLAB_TOKEN": ""}
    run = fleet_repo.run("plan", variables=variables)
    assert run.passed("plan"), run.output
    assert "no VPSFLEET_GITLAB_TOKEN: the plan is not posted" in run.output
    assert notes_api.notes == []
    assert "alpha-app: plan_changed (M9)" in fleet_repo.out("plan.md")
