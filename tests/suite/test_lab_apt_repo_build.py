"""The lab's apt repository builder (vpsfleet_agents/lab_apt_repo.py, built into role
lab_apt_repo's files), run as its role runs it, and its archives read by this machine's real
apt: the security archive is what unattended-upgrades' Origins-Pattern for Debian-Security
matches, a rebuild is a newer version of an installed package, and a second run writes nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from vpsfleet import agent_build

ROOT = Path(__file__).resolve().parents[2]
BUILDER = agent_build.built()["lab-apt-repo-build"]  # the very file the role installs
INSTALLED = "dpkg"  # installed wherever dpkg-deb is


def build(spec: dict[str, Any], out: Path, *extra: str) -> dict[str, Any]:
    spec_file = out.parent / "spec.json"
    spec_file.write_text(json.dumps(spec), encoding="utf-8")
    done = subprocess.run(
        ["python3", str(BUILDER), str(spec_file), str(out), *extra],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def installed_version(package: str) -> str:
    return subprocess.run(
        ["dpkg-query", "-W", "-f", "${Version}", package], capture_output=True, text=True, check=True
    ).stdout


SPEC = {
    "archives": [
        {
            "name": "security",
            "origin": "Debian",
            "label": "Debian-Security",
            "suite": "bookworm-security",
            "rebuilds": [{"package": INSTALLED, "suffix": "+lab1", "reboot": True}],
            "packages": [{"name": "vpsfleet-sec-demo", "version": "1.1"}],
        },
        {
            "name": "main",
            "origin": "Debian",
            "label": "Debian",
            "suite": "bookworm",
            "packages": [{"name": "vpsfleet-regular-demo", "version": "1.1"}],
        },
    ]
}


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    if shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None:
        pytest.skip("needs dpkg-deb and apt")
    out = tmp_path_factory.mktemp("lab-apt") / "repo"
    return out, build(SPEC, out)


def apt(tmp: Path, repo: Path, *argv: str) -> str:
    """This machine's apt, on the built archives only (its own state and lists untouched)."""
    sources = tmp / "sources.list"
    sources.write_text(
        f"deb [trusted=yes] file:{repo}/security bookworm-security main\n"
        f"deb [trusted=yes] file:{repo}/main bookworm main\n",
        encoding="utf-8",
    )
    (tmp / "parts").mkdir(exist_ok=True)
    (tmp / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (tmp / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    options = [
        "-o",
        f"Dir::Etc::SourceList={sources}",
        "-o",
        f"Dir::Etc::SourceParts={tmp / 'parts'}",
        "-o",
        f"Dir::State::Lists={tmp / 'lists'}",
        "-o",
        f"Dir::Cache={tmp / 'cache'}",
        "-o",
        "APT::Sandbox::User=root",
        "-o",
        "Debug::NoLocking=1",
    ]
    done = subprocess.run(
        [argv[0], *options, *argv[1:]], capture_output=True, text=True, check=False, timeout=120
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_apt_reads_the_security_archive_as_debian_security(
    repo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, _ = repo
    apt(tmp_path, out, "apt-get", "update")
    policy = apt(tmp_path, out, "apt-cache", "policy", INSTALLED, "vpsfleet-regular-demo")
    version = installed_version(INSTALLED)
    assert f"Candidate: {version}+lab1" in policy
    # The fields unattended-upgrades' Origins-Pattern matches on
    # (origin=Debian,codename=${distro_codename}-security,label=Debian-Security).
    policy = apt(tmp_path, out, "apt-cache", "policy")
    assert "o=Debian,a=bookworm-security,n=bookworm-security,l=Debian-Security,c=main" in policy
    assert "o=Debian,a=bookworm,n=bookworm,l=Debian,c=main" in policy


def test_a_rebuild_is_the_installed_package_with_a_newer_version_that_asks_for_a_reboot(
    repo: tuple[Path, dict[str, Any]],
) -> None:
    out, _ = repo
    (deb,) = (out / "security" / "pool").glob(f"{INSTALLED}_*+lab1_*.deb")
    fields = subprocess.run(
        ["dpkg-deb", "--field", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert f"Version: {installed_version(INSTALLED)}+lab1" in fields
    files = subprocess.run(
        ["dpkg-deb", "--contents", str(deb)], capture_output=True, text=True, check=True
    ).stdout
    assert "./usr/bin/dpkg" in files
    postinst = subprocess.run(
        ["dpkg-deb", "--info", str(deb), "postinst"], capture_output=True, text=True, check=True
    ).stdout
    assert "touch /var/run/reboot-required" in postinst
    assert f"echo {INSTALLED} >>/var/run/reboot-required.pkgs" in postinst


def test_a_second_run_writes_nothing_and_check_mode_never_writes(
    repo: tuple[Path, dict[str, Any]], tmp_path: Path
) -> None:
    out, first = repo
    assert first["changed"] is True
    assert build(SPEC, out) == {**first, "changed": False, "written": []}
    fresh = tmp_path / "fresh"
    checked = build(SPEC, fresh, "--check")
    assert checked["changed"] is True
    assert not fresh.exists()
