"""The patching tests' apt repositories (tests/patching/apt_repo.py, built by role lab_apt_repo's
builder), read by this machine's real apt: the security archive is what unattended-upgrades'
Origins-Pattern for Debian-Security matches, the regular one is not, the tools are served, the
1.0 of every demo package is in base/pool, and a caller's umask 077 does not break the build."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.patching.apt_repo import DEMO_PACKAGES, build_apt_repo

TOOL = "vpsfleet-tool-demo"  # stands for unattended-upgrades and the other cached tools


def run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=120)
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def tool_deb(tools: Path) -> None:
    """A stand-in for one of scripts/setup.d/60-patching.sh's cached packages."""
    root = tools.parent / "tool-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {TOOL}\nVersion: 2.0\nArchitecture: all\nMaintainer: t <t@test.example.net>\n"
        "Description: a tool\n",
        encoding="utf-8",
    )
    tools.mkdir()
    run("dpkg-deb", "--root-owner-group", "--build", str(root), str(tools / f"{TOOL}_2.0_all.deb"))


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if shutil.which("dpkg-deb") is None or shutil.which("apt-get") is None:
        pytest.skip("needs dpkg-deb and apt (scripts/setup.sh)")
    tmp = tmp_path_factory.mktemp("patching-apt")
    tool_deb(tmp / "tools")
    out = tmp / "repo"
    previous = os.umask(0o077)  # a hardened shell's umask: the builder must set 022 itself
    try:
        build_apt_repo(out, tmp / "tools")
    finally:
        os.umask(previous)
    return out


def apt(tmp: Path, repo: Path, *argv: str) -> str:
    """This machine's apt on the security and regular archives only (its own state untouched)."""
    sources = tmp / "sources.list"
    sources.write_text(
        f"deb [trusted=yes] file:{repo}/security bookworm-security main\n"
        f"deb [trusted=yes] file:{repo}/main bookworm main\n",
        encoding="utf-8",
    )
    for folder in ("parts", "lists/partial", "cache/archives/partial"):
        (tmp / folder).mkdir(parents=True, exist_ok=True)
    options = {
        "Dir::Etc::SourceList": sources,
        "Dir::Etc::SourceParts": tmp / "parts",
        "Dir::State::Lists": tmp / "lists",
        "Dir::Cache": tmp / "cache",
        "APT::Sandbox::User": "root",
        "Debug::NoLocking": "1",
    }
    flags = [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]
    return run(argv[0], *flags, *argv[1:]).stdout


def candidates(policy: str) -> dict[str, str]:
    """apt-cache policy's text as {package: candidate}."""
    found: dict[str, str] = {}
    package = ""
    for line in policy.splitlines():
        if line and not line.startswith(" "):
            package = line.rstrip(":")
        elif line.strip().startswith("Candidate:"):
            found[package] = line.split(":", 1)[1].strip()
    return found


def test_apt_sees_the_security_updates_as_debian_security_and_the_rest_as_debian(
    repo: Path, tmp_path: Path
) -> None:
    apt(tmp_path, repo, "apt-get", "update")
    policy = apt(tmp_path, repo, "apt-cache", "policy")
    # unattended-upgrades' pattern: origin=Debian,codename=${distro_codename}-security,label=Debian-Security
    assert "o=Debian,a=bookworm-security,n=bookworm-security,l=Debian-Security,c=main" in policy
    assert "o=Debian,a=bookworm,n=bookworm,l=Debian,c=main" in policy
    names = [*DEMO_PACKAGES, TOOL]
    assert candidates(apt(tmp_path, repo, "apt-cache", "policy", *names)) == {
        "vpsfleet-sec-demo": "1.1",
        "vpsfleet-sec-reboot-demo": "1.1",
        "vpsfleet-sec-broken-demo": "1.1",
        "vpsfleet-regular-demo": "1.1",
        TOOL: "2.0",
    }
    madison = apt(tmp_path, repo, "apt-cache", "madison", *names)
    # NAME | VERSION | URI SUITE/COMPONENT ARCH Packages
    suites = {row.split("|")[0].strip(): row.split("|")[2].split()[1] for row in madison.splitlines()}
    assert suites == {
        "vpsfleet-sec-demo": "bookworm-security/main",
        "vpsfleet-sec-reboot-demo": "bookworm-security/main",
        "vpsfleet-sec-broken-demo": "bookworm-security/main",
        "vpsfleet-regular-demo": "bookworm/main",
        TOOL: "bookworm/main",
    }


def test_base_pool_holds_the_1_0_of_every_demo_package(repo: Path) -> None:
    pool = repo / "base" / "pool"
    assert sorted(p.name for p in pool.glob("*.deb")) == sorted(f"{n}_1.0_all.deb" for n in DEMO_PACKAGES)
    for name in DEMO_PACKAGES:
        deb = pool / f"{name}_1.0_all.deb"
        assert "Version: 1.0\n" in run("dpkg-deb", "--field", str(deb)).stdout
        assert f"./usr/share/vpsfleet-demo/{name}.version" in run("dpkg-deb", "--contents", str(deb)).stdout
        assert run("dpkg-deb", "--info", str(deb), "postinst", check=False).returncode != 0  # none


def test_postinsts_flag_a_reboot_and_fail_on_purpose(repo: Path, tmp_path: Path) -> None:
    pool = repo / "security" / "pool"
    reboot = run("dpkg-deb", "--info", str(pool / "vpsfleet-sec-reboot-demo_1.1_all.deb"), "postinst").stdout
    assert "touch /var/run/reboot-required" in reboot
    assert "echo vpsfleet-sec-reboot-demo >>/var/run/reboot-required.pkgs" in reboot
    broken = tmp_path / "postinst"
    broken.write_text(
        run("dpkg-deb", "--info", str(pool / "vpsfleet-sec-broken-demo_1.1_all.deb"), "postinst").stdout,
        encoding="utf-8",
    )
    configure = run("sh", str(broken), "configure", "1.0", check=False)
    assert configure.returncode == 1
    assert "configuration failed on purpose" in configure.stderr
    assert run("sh", str(broken), "abort-upgrade", "1.0", check=False).returncode == 0
    plain = run("dpkg-deb", "--info", str(pool / "vpsfleet-sec-demo_1.1_all.deb"), "postinst", check=False)
    assert plain.returncode != 0  # no postinst at all
