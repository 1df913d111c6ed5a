"""The GitLab pipeline's apply and nightly jobs, run by gitlab-ci-local in a shell, with a
stand-in for the `vpsfleet` command that records how it is called (the real `deploy apply` needs
Pulumi and the machines: its own tests and the lab scenario run it). What is checked here is the
jobs' side: which revisions, the persisted state, the SSH key in an agent, the artifacts kept.
M1: a merge to main is what changes production, through these jobs."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from .pipeline import NOW, FleetRepo, git

RESIZE_APP = ("    plan: vps-s\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.11",
              "    plan: vps-m\n    host: labhv1\n    image: debian-12\n    ipv4: 198.51.100.11")
WINDOW_WEB = ('maintenance_window: "05:00"', 'maintenance_window: "04:00"')

# The stand-in: its arguments, one call a line, and the keys its SSH agent holds; it writes an
# ansible-runner-like artifact into the state folder and exits with the code in its `rc` file.
STUB = """#!/usr/bin/env bash
here="{here}"
printf '%s\\n' "$*" >>"$here/calls"
ssh-add -l >>"$here/agent" 2>&1 || true
state=""
prev=""
for arg in "$@"; do [[ "$prev" == --state-dir ]] && state="$arg"; prev="$arg"; done
mkdir -p "$state/artifacts/run-$$"
echo "PLAY RECAP alpha-app ok=3" >"$state/artifacts/run-$$/stdout"
exit "$(cat "$here/rc" 2>/dev/null || echo 0)"
"""


class Deploy:
    def __init__(self, repo: FleetRepo, tmp_path: Path) -> None:
        self.repo = repo
        self.stub_dir = tmp_path / "stub"
        self.stub_dir.mkdir()
        stub = self.stub_dir / "vpsfleet"
        stub.write_text(STUB.format(here=self.stub_dir))
        stub.chmod(0o755)
        repo.stub_venv(stub)
        self.state = tmp_path / "state"
        self.state.mkdir()
        self.key = tmp_path / "deploy-key"  # throwaway, made here
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ci-test-key",
                        "-f", str(self.key)], check=True)
        self.base = git(repo.root, "rev-parse", "HEAD")
        self.merges = 0

    def merge(self, *edits: tuple[str, str]) -> str:
        """A merge request's change, merged into main; main's new tip."""
        self.merges += 1
        branch = f"mr-{self.merges}"
        git(self.repo.root, "checkout", "-q", "-b", branch)
        self.repo.commit(*edits)
        git(self.repo.root, "checkout", "-q", "main")
        git(self.repo.root, "merge", "-q", "--no-ff", "-m", f"Merge {branch}", branch)
        return git(self.repo.root, "rev-parse", "HEAD")

    def variables(self, source: str, before: str = "0" * 40) -> dict[str, str]:
        return {"CI_PIPELINE_SOURCE": source, "CI_COMMIT_BRANCH": "main",
                "CI_COMMIT_BEFORE_SHA": before, "VPSFLEET_STATE_DIR": str(self.state),
                "VPSFLEET_DEPLOY_OPTIONS": "--skip-pulumi", "VPSFLEET_SSH_KEY": str(self.key)}

    def calls(self) -> list[str]:
        path = self.stub_dir / "calls"
        return path.read_text().splitlines() if path.exists() else []

    def expected(self, verb: str, *revisions: str) -> str:
        root = self.repo.root
        return " ".join(["deploy", verb, "lab", *revisions, "--state-dir", str(self.state),
                         "--inventory", f"{root}/inventories/lab/vpsfleet.yml",
                         "--inventory", f"{root}/ci/secrets-inventory.yml",
                         "--now", NOW, "--skip-pulumi"])


@pytest.fixture
def deploy(fleet_repo: FleetRepo, tmp_path: Path) -> Deploy:
    git(fleet_repo.root, "checkout", "-q", "main")
    return Deploy(fleet_repo, tmp_path)


def test_apply_from_the_last_deployed_revision(deploy: Deploy) -> None:
    first = deploy.merge(RESIZE_APP)
    run = deploy.repo.run(variables=deploy.variables("push", before=deploy.base))
    assert run.passed("apply"), run.output
    assert deploy.calls() == [deploy.expected("apply", "--from", deploy.base, "--to", "HEAD")]
    assert (deploy.state / "ci-deployed-revision").read_text().strip() == first
    # the key was in the job's agent; ansible-runner's artifacts are kept with the job
    assert "ci-test-key" in (deploy.stub_dir / "agent").read_text()
    kept = list((deploy.repo.root / "ci-output" / "state" / "artifacts").glob("run-*/stdout"))
    assert [p.read_text() for p in kept] == ["PLAY RECAP alpha-app ok=3\n"]

    # The next merge: the state's record wins over the CI's "previous tip" (here unknown, as
    # in a pipeline started by hand), so nothing merged since the last apply is skipped.
    second = deploy.merge(WINDOW_WEB)
    run = deploy.repo.run(variables=deploy.variables("push"))
    assert run.passed("apply"), run.output
    assert deploy.calls()[-1] == deploy.expected("apply", "--from", first, "--to", "HEAD")
    assert (deploy.state / "ci-deployed-revision").read_text().strip() == second


def test_a_failed_apply_is_retried_from_the_same_revision(deploy: Deploy) -> None:
    deploy.merge(RESIZE_APP)
    (deploy.stub_dir / "rc").write_text("1")
    run = deploy.repo.run(variables=deploy.variables("push", before=deploy.base))
    assert run.failed("apply")
    assert not (deploy.state / "ci-deployed-revision").exists()
    (deploy.stub_dir / "rc").write_text("0")
    run = deploy.repo.run(variables=deploy.variables("push", before=deploy.base))
    assert run.passed("apply"), run.output
    assert deploy.calls()[-1] == deploy.expected("apply", "--from", deploy.base, "--to", "HEAD")


def test_apply_refuses_to_guess(deploy: Deploy, tmp_path: Path) -> None:
    deploy.merge(RESIZE_APP)
    # no record and no previous tip: the operator names the deployed revision once
    run = deploy.repo.run(variables=deploy.variables("push"))
    assert run.failed("apply")
    assert f"no deployed revision to apply from (got ''): write the revision production runs " \
           f"into {deploy.state}/ci-deployed-revision" in run.output
    # a state folder that is not there (the runner's volume not mounted)
    missing = tmp_path / "not-mounted"
    run = deploy.repo.run(variables={**deploy.variables("push", before=deploy.base),
                                              "VPSFLEET_STATE_DIR": str(missing)})
    assert run.failed("apply")
    assert f"state folder {missing} does not exist" in run.output
    assert deploy.calls() == []


def test_production_applies_only_when_started_by_hand(deploy: Deploy) -> None:
    deploy.merge(RESIZE_APP)
    variables = {**deploy.variables("push", before=deploy.base), "VPSFLEET_ENV": "production"}
    run = deploy.repo.run(variables=variables)
    assert run.returncode == 0 and not run.passed("apply"), run.output
    assert deploy.calls() == []  # the gate: a manual job does not start by itself
    run = deploy.repo.run(variables=variables, manual=("apply",))
    assert run.passed("apply"), run.output
    assert deploy.calls() == [deploy.expected("apply", "--from", deploy.base, "--to", "HEAD")
                              .replace("deploy apply lab", "deploy apply production")
                              .replace("inventories/lab/", "inventories/production/")]


def test_the_nightly_run(deploy: Deploy) -> None:
    run = deploy.repo.run(variables=deploy.variables("schedule"))
    assert run.passed("nightly"), run.output
    assert deploy.calls() == [deploy.expected("nightly")]
    assert len(list((deploy.repo.root / "ci-output" / "state").rglob("stdout"))) == 1
