"""Which of ci/gitlab-ci.yml's jobs a pipeline holds, and when they run, as gitlab-ci-local reads
the file (the same rules GitLab evaluates)."""

from __future__ import annotations

from .pipeline import FleetRepo


def test_a_merge_request_validates_and_plans_and_deploys_nothing(fleet_repo: FleetRepo) -> None:
    jobs = fleet_repo.listed({"CI_PIPELINE_SOURCE": "merge_request_event",
                              "CI_MERGE_REQUEST_TARGET_BRANCH_NAME": "main"})
    assert jobs == {
        "validate": "on_success", "plan": "on_success", "apply": "never", "nightly": "never"}


def test_main_applies_production_by_hand_only(fleet_repo: FleetRepo) -> None:
    push = {"CI_PIPELINE_SOURCE": "push", "CI_COMMIT_BRANCH": "main"}
    production = fleet_repo.listed({**push, "VPSFLEET_ENV": "production"})
    assert production["apply"] == "manual"
    assert production["validate"] == production["nightly"] == "never"
    # another environment (a staging fleet) follows main by itself
    assert fleet_repo.listed({**push, "VPSFLEET_ENV": "staging"})["apply"] == "on_success"


def test_the_schedule_runs_nightly_only(fleet_repo: FleetRepo) -> None:
    jobs = fleet_repo.listed({"CI_PIPELINE_SOURCE": "schedule", "CI_COMMIT_BRANCH": "main",
                              "VPSFLEET_ENV": "production"})
    assert jobs == {
        "validate": "never", "plan": "never", "apply": "never", "nightly": "on_success"}
