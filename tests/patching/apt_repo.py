"""The apt repositories the patching tests serve to their guests (issue 5), as a spec for the lab's
builder (vpsfleet_agents/lab_apt_repo.py): one builder for the lab and the tests. Used by
tests/patching and by role patching's Molecule prepare (`python -m tests.patching.apt_repo OUT`).

    OUT/security  Origin: Debian, Label: Debian-Security, Codename: bookworm-security (what
                  unattended-upgrades must install): vpsfleet-sec-demo 1.1,
                  vpsfleet-sec-reboot-demo 1.1 (its postinst asks for a reboot the way a kernel
                  does), vpsfleet-sec-broken-demo 1.1 (its postinst fails: the fault test)
    OUT/main      Origin: Debian, Label: Debian, Codename: bookworm (a point release: Debian's own
                  50unattended-upgrades would install it, ours must not): vpsfleet-regular-demo
                  1.1, plus unattended-upgrades and the dependencies the test image lacks
                  (scripts/setup.d/60-patching.sh's cache), so guests talk to no other host
    OUT/base      the 1.0 of every demo package, in OUT/base/pool (guests install them by path;
                  no guest lists this archive)

Unsigned: guests list the archives with [trusted=yes] (tests only).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

DEMO_PACKAGES = (
    "vpsfleet-sec-demo",
    "vpsfleet-sec-reboot-demo",
    "vpsfleet-sec-broken-demo",
    "vpsfleet-regular-demo",
)
# The fault test: a security update whose configuration fails, left half-configured.
BROKEN_POSTINST = (
    'if [ "$1" = configure ]; then\n'
    '  echo "vpsfleet-sec-broken-demo: configuration failed on purpose (fault test)" >&2\n'
    "  exit 1\n"
    "fi"
)


def tool_debs() -> Path:
    """Where scripts/setup.d/60-patching.sh caches the packages the test image lacks."""
    return Path(os.environ.get("PATCHING_TOOL_DEBS") or "/var/cache/vpsfleet/patching-debs")


def spec(tools: Path) -> dict[str, Any]:
    """The builder's spec (see vpsfleet_agents/lab_apt_repo.py) of the three archives."""
    return {
        "archives": [
            {
                "name": "security",
                "origin": "Debian",
                "label": "Debian-Security",
                "suite": "bookworm-security",
                "packages": [
                    {"name": "vpsfleet-sec-demo", "version": "1.1"},
                    # `reboot`: the builder's kernel-like postinst (reboot-required and .pkgs).
                    {"name": "vpsfleet-sec-reboot-demo", "version": "1.1", "reboot": True},
                    {"name": "vpsfleet-sec-broken-demo", "version": "1.1", "postinst": BROKEN_POSTINST},
                ],
            },
            {
                "name": "main",
                "origin": "Debian",
                "label": "Debian",
                "suite": "bookworm",
                "packages": [{"name": "vpsfleet-regular-demo", "version": "1.1"}],
                "debs_dir": str(tools),
            },
            {
                "name": "base",
                "origin": "vpsfleet",
                "label": "vpsfleet-tests-base",
                "suite": "base",
                "packages": [{"name": name, "version": "1.0"} for name in DEMO_PACKAGES],
            },
        ]
    }


def build_apt_repo(out: Path, tools: Path | None = None) -> dict[str, Any]:
    """Builds the archives afresh in `out` (removed first) with the builder in its own process
    (it sets umask 022: dpkg-deb refuses a DEBIAN folder that is not 0755-ish); returns its
    report. The builder's output in the failure, since a bare exit status says nothing."""
    tools = tool_debs() if tools is None else tools
    if not any(tools.glob("*.deb")):
        print(
            f"warning: no tool packages in {tools} (run scripts/setup.sh): guests need unattended-upgrades",
            file=sys.stderr,
        )
    shutil.rmtree(out, ignore_errors=True)  # a fresh repository, as a test expects
    with tempfile.TemporaryDirectory(prefix="patching-apt-spec-") as tmp:
        spec_file = Path(tmp) / "spec.json"
        spec_file.write_text(json.dumps(spec(tools)), encoding="utf-8")
        done = subprocess.run(
            [sys.executable, "-m", "vpsfleet_agents.lab_apt_repo", str(spec_file), str(out)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            cwd=ROOT,
        )
    if done.returncode != 0:
        raise AssertionError(f"lab_apt_repo {out}: exit {done.returncode}\n{done.stdout}{done.stderr}")
    report: dict[str, Any] = json.loads(done.stdout)
    return report


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m tests.patching.apt_repo OUT")
    result = build_apt_repo(Path(sys.argv[1]))
    print(f"test apt repositories in {sys.argv[1]}: {result['packages']}", file=sys.stderr)
