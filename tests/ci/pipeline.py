"""A throwaway fleet repository and gitlab-ci-local running ci/gitlab-ci.yml's jobs in it.

The repository holds what the pipeline uses from a checkout of vpsfleet: the pipeline and its
scripts (ci/), the install steps (scripts/setup.d/20-venv.sh, 25-collection-link.sh),
pyproject.toml and the lab's fleet, on a branch `main` and a merge request's branch `change`.
Its `.venv` points at this checkout's virtualenv (python and the vpsfleet command only), with the
hash of pyproject.toml that 20-venv.sh keeps: the install step then finds it up to date and never
reaches this checkout's virtualenv to change it.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
TOOLS = REPO / ".cache" / "ci-tools" / "node_modules" / ".bin"
# The clock of every job (VPSFLEET_NOW): the lab fleet's dates are judged at this instant.
NOW = "2026-11-23T12:00:00Z"
PIPELINE_FILES = ("ci/fleet.sh", "ci/gitlab-mr-note.sh", "ci/secrets-inventory.yml")
INSTALL_FILES = ("scripts/setup.d/20-venv.sh", "scripts/setup.d/25-collection-link.sh",
                 "pyproject.toml")
# Variables the tests set that gitlab-ci-local would otherwise warn about.
PREDEFINED = (
    "CI_PIPELINE_SOURCE,CI_COMMIT_BRANCH,CI_COMMIT_BEFORE_SHA,CI_API_V4_URL,CI_PROJECT_ID,"
    "CI_MERGE_REQUEST_IID"
)


def install_tools() -> Path:
    """gitlab-ci-local, installed the project's way (idempotent); the path of the program."""
    subprocess.run(["bash", str(REPO / "scripts" / "setup.d" / "80-ci-tools.sh")], check=True,
                   capture_output=True, text=True, env={**os.environ, "VPSFLEET_ROOT": str(REPO)})
    return TOOLS / "gitlab-ci-local"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c",
                           "user.email=t@example.com", *args], check=True, capture_output=True,
                          text=True).stdout.strip()


def edited(text: str, *edits: tuple[str, str]) -> str:
    for old, new in edits:
        assert old in text, old
        text = text.replace(old, new, 1)
    return text


@dataclass(frozen=True)
class Run:
    returncode: int
    output: str  # gitlab-ci-local's output: every job's lines, prefixed with the job's name

    def passed(self, job: str) -> bool:
        return any(line.split() == ["PASS", job] for line in self.output.splitlines())

    def failed(self, job: str) -> bool:
        return any(line.split() == ["FAIL", job] for line in self.output.splitlines())


class FleetRepo:
    def __init__(self, root: Path, gitlab_ci_local: Path) -> None:
        self.root = root
        self.gitlab_ci_local = gitlab_ci_local
        self.home = root.parent / "gcl-home"  # gitlab-ci-local's own settings: none
        self.home.mkdir()
        for name in (*PIPELINE_FILES, *INSTALL_FILES, "inventories/lab/fleet.yml",
                     "inventories/lab/vpsfleet.yml"):
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(REPO / name, root / name)
        shutil.copy(REPO / "ci" / "gitlab-ci.yml", root / ".gitlab-ci.yml")
        self.stub_venv(REPO / ".venv" / "bin" / "vpsfleet")
        (root / ".gitignore").write_text(".venv/\n.cache/\nci-output/\n.gitlab-ci-local/\n")
        git(root, "init", "-q", "-b", "main")
        git(root, "add", "-A")
        git(root, "commit", "-qm", "the lab fleet")
        git(root, "checkout", "-q", "-b", "change")

    def stub_venv(self, vpsfleet: Path) -> None:
        """A .venv whose vpsfleet command is VPSFLEET (this checkout's, or a test's stand-in)."""
        venv = self.root / ".venv"
        (venv / "bin").mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / ".venv" / "pyvenv.cfg", venv / "pyvenv.cfg")
        for name, target in (("python", REPO / ".venv" / "bin" / "python"), ("vpsfleet", vpsfleet)):
            (venv / "bin" / name).unlink(missing_ok=True)
            (venv / "bin" / name).symlink_to(target)
        digest = hashlib.sha256((self.root / "pyproject.toml").read_bytes()).hexdigest()
        (venv / ".pyproject.sha256").write_text(digest + "\n")

    @property
    def fleet(self) -> Path:
        return self.root / "inventories" / "lab" / "fleet.yml"

    def commit(self, *edits: tuple[str, str], message: str = "change") -> str:
        self.fleet.write_text(edited(self.fleet.read_text(), *edits))
        git(self.root, "commit", "-qam", message)
        return git(self.root, "rev-parse", "HEAD")

    def args(self, variables: dict[str, str]) -> list[str]:
        args = [str(self.gitlab_ci_local), "--home", str(self.home), "--no-color",
                "--force-shell-executor", "--ignore-predefined-vars", PREDEFINED]
        for name, value in {"VPSFLEET_ENV": "lab", "VPSFLEET_NOW": NOW, **variables}.items():
            args += ["--variable", f"{name}={value}"]
        return args

    def run(self, *jobs: str, variables: dict[str, str], manual: tuple[str, ...] = ()) -> Run:
        """Runs JOBS in a shell (none: the whole pipeline, by its rules) with VARIABLES; MANUAL
        names the manual jobs a person starts. A job named in JOBS runs whatever its rules."""
        extra = [arg for job in manual for arg in ("--manual", job)]
        done = subprocess.run([*self.args(variables), *extra, *jobs], cwd=self.root,
                              capture_output=True, text=True, timeout=300,
                              env={k: v for k, v in os.environ.items() if k != "VPSFLEET_ROOT"})
        return Run(done.returncode, done.stdout + done.stderr)

    def listed(self, variables: dict[str, str]) -> dict[str, str]:
        """The jobs of a pipeline with VARIABLES: name -> when (never, manual, on_success...)."""
        done = subprocess.run([*self.args(variables), "--list-json"], cwd=self.root,
                              capture_output=True, text=True, timeout=120, check=True)
        jobs = json.loads(done.stdout[done.stdout.index("["):])
        return {str(job["name"]): str(job["when"]) for job in jobs}

    def out(self, name: str) -> str:
        return (self.root / "ci-output" / name).read_text()
