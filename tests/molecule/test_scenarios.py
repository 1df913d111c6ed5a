"""Every Molecule scenario of the repository, run in full (`molecule test`: create, prepare,
check, converge, idempotence, verify, destroy) on podman systemd containers of the local test
image, with the shared base configuration (molecule/run.sh)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

# (project folder, scenario): each role's `default`, then the scenarios spanning roles. A scenario
# costs containers created, booted and converged, so tests that need the machines another scenario
# already builds go into that scenario (the backup operations playbooks: role backup_agent's `default`,
# tests/test_ops.py; docs/test-suite.md).
SCENARIOS = sorted(
    (str(path.parent.parent.parent.relative_to(REPO)), path.parent.name)
    for path in (REPO / "ansible" / "roles").glob("*/molecule/*/molecule.yml")
) + sorted((".", path.parent.name) for path in (REPO / "molecule").glob("*/molecule.yml"))


@pytest.mark.molecule
@pytest.mark.slow
@pytest.mark.skipif(shutil.which("podman") is None, reason="podman is installed by make setup")
@pytest.mark.parametrize(("project", "scenario"), SCENARIOS, ids=[f"{p}:{s}" for p, s in SCENARIOS])
def test_molecule_scenario(project: str, scenario: str, tmp_path: Path) -> None:
    log = tmp_path / "molecule.log"
    with log.open("w") as out:
        result = subprocess.run(
            ["bash", str(REPO / "molecule" / "run.sh"), project, "test", "-s", scenario],
            stdout=out,
            stderr=subprocess.STDOUT,
            env={**os.environ, "VPSFLEET_ROOT": str(REPO), "NO_COLOR": "1"},
            timeout=2400,  # two scenarios share the machine (tests/conftest.py)
        )
    if result.returncode != 0:
        pytest.fail(f"molecule test failed for {project}:{scenario}:\n{log.read_text()[-8000:]}")


def test_every_role_has_a_scenario() -> None:
    roles = {p.name for p in (REPO / "ansible" / "roles").iterdir() if (p / "tasks").is_dir()}
    with_scenario = {Path(p).name for p, _ in SCENARIOS if p != "."}
    # The lab-only roles (the relay's stand-in, the lab's apt repository) converge and are re-run
    # for idempotence in the site scenario, which applies lab.yml; every other role has its own.
    assert roles - {"mail_sink", "lab_apt_repo"} <= with_scenario
    assert "site" in {s for p, s in SCENARIOS if p == "."}


def test_the_backup_operations_tests_run_after_the_roles() -> None:
    """Role backup's scenario verifies the role (test_default.py), then the operations playbooks
    on the same store and guest (test_ops.py), which start from the state the role's tests leave:
    Molecule's testinfra verifier runs a scenario's test files in sorted order."""
    tests = REPO / "ansible" / "roles" / "backup_agent" / "molecule" / "default" / "tests"
    names = sorted(path.name for path in tests.glob("test_*.py"))
    assert names.index("test_default.py") < names.index("test_ops.py")
    assert ("ansible/roles/backup_agent", "default") in SCENARIOS
    assert not (REPO / "molecule" / "backup_ops").exists()
