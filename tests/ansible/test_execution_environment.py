"""execution-environment.yml renders a build context (ansible-builder create) that installs what
the inventory plugin and the roles need. The image build itself needs a container engine that
reaches quay.io, PyPI and Galaxy, which the tests never have: it is not run here."""

from __future__ import annotations

import re
import subprocess
import tomllib
from pathlib import Path

import yaml

from tests.ansible.conftest import ANSIBLE_DIR, BIN, REPO

DEFINITION = REPO / "execution-environment.yml"


def pinned(package: str) -> str:
    """`package==version` as pyproject.toml pins it."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for requirement in project["dependencies"] + project["optional-dependencies"]["dev"]:
        if re.fullmatch(rf"{re.escape(package)}==[0-9.]+", requirement):
            return str(requirement)
    raise AssertionError(f"{package} is not pinned in pyproject.toml")


def test_ansible_builder_create_renders_a_containerfile_with_the_requirements(tmp_path: Path) -> None:
    context = tmp_path / "context"
    result = subprocess.run(
        [str(BIN / "ansible-builder"), "create", "--file", str(DEFINITION), "--context", str(context)],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    containerfile = (context / "Containerfile").read_text()
    build = context / "_build"

    # ansible-core and ansible-runner at the versions the project pins.
    assert pinned("ansible-core") in containerfile
    assert pinned("ansible-runner") in containerfile
    # The collections of requirements.yml, installed by ansible-galaxy in the image.
    assert "-r requirements.yml" in containerfile
    galaxy = yaml.safe_load((build / "requirements.yml").read_text())
    assert galaxy == yaml.safe_load((ANSIBLE_DIR / "requirements.yml").read_text())
    # The vpsfleet package's dependencies at their pins, then the package itself from the checkout.
    python = (build / "requirements.txt").read_text().split()
    for package in ("pydantic", "ruamel.yaml", "pyyaml", "jinja2"):
        assert pinned(package) in python, package
    assert (build / "vpsfleet-package" / "pyproject.toml").is_file()
    assert (build / "vpsfleet-package" / "vpsfleet" / "loader.py").is_file()
    assert "pip install --no-cache-dir --no-deps /tmp/vpsfleet-package" in containerfile
    # The collection vpsfleet.platform itself, the inventory plugin included.
    assert (build / "vpsfleet-platform" / "galaxy.yml").is_file()
    assert (build / "vpsfleet-platform" / "plugins" / "inventory" / "vpsfleet.py").is_file()
    assert "ansible-galaxy collection install --offline --no-deps" in containerfile
    # System packages through bindep: SSH to the machines.
    assert "openssh-clients" in (build / "bindep.txt").read_text()
    assert "install-from-bindep" in containerfile
    # Python 3.11, as the package requires.
    assert 'PYCMD="/usr/bin/python3.11"' in containerfile
