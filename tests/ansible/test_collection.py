"""ansible/ as the collection vpsfleet.platform: it builds, the tarball holds the roles, playbooks
and plugins, it installs offline beside the collections of the pinned `ansible` package, and
every collection the content calls by FQCN is declared (requirements.yml, galaxy.yml)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ansible.conftest import ANSIBLE_DIR, BIN, REPO

SHIPPED = REPO / ".venv" / "lib" / "python3.11" / "site-packages" / "ansible_collections"
OURS = "vpsfleet.platform"
BUILTIN = {"ansible.builtin", "ansible.legacy", OURS}

# namespace.collection.name: a module (a task's key), or a plugin inside a Jinja expression.
_FQCN = r"([a-z][a-z0-9_]*)\.([a-z][a-z0-9_]*)\.[a-z][a-z0-9_]*"
_KEY = re.compile(rf"^{_FQCN}$")
_IN_JINJA = re.compile(rf"(?:(?:lookup|query|q)\(\s*['\"]|\|\s*|\bis\s+(?:not\s+)?){_FQCN}")


def galaxy() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ANSIBLE_DIR / "galaxy.yml").read_text())
    return data


def requirements() -> dict[str, str]:
    data = yaml.safe_load((ANSIBLE_DIR / "requirements.yml").read_text())
    return {item["name"]: str(item["version"]) for item in data["collections"]}


def shipped_version(collection: str) -> str:
    namespace, name = collection.split(".")
    manifest = json.loads((SHIPPED / namespace / name / "MANIFEST.json").read_text())
    version: str = manifest["collection_info"]["version"]
    return version


def _walk(node: Any) -> Iterator[str]:
    """Every collection named by FQCN in a YAML document: task keys, `collections:` lists, and
    lookups, filters and tests in strings."""
    if isinstance(node, dict):
        for key, value in node.items():
            if isinstance(key, str) and (match := _KEY.match(key)):
                yield f"{match[1]}.{match[2]}"
            if key == "collections" and isinstance(value, list):
                yield from (v for v in value if isinstance(v, str))  # a play's search list
            yield from _walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from _walk(value)
    elif isinstance(node, str):
        for match in _IN_JINJA.finditer(node):
            yield f"{match[1]}.{match[2]}"


def collections_used() -> dict[str, set[str]]:
    """Collection -> the files of ansible/ that call it (molecule scenarios included)."""
    used: dict[str, set[str]] = {}
    for path in sorted(ANSIBLE_DIR.rglob("*.yml")):
        if ".cache" in path.parts:
            continue
        for document in yaml.safe_load_all(path.read_text()):
            for collection in _walk(document):
                used.setdefault(collection, set()).add(str(path.relative_to(ANSIBLE_DIR)))
    return {c: files for c, files in used.items() if c not in BUILTIN}


def test_the_scan_sees_the_collections_the_roles_use() -> None:
    """The scan itself: what the roles are known to call (tls.yml, mysql.yml, time.yml)."""
    used = collections_used()
    assert {"community.crypto", "community.mysql", "community.general", "ansible.posix"} <= set(used)
    assert "roles/backup_store/tasks/tls.yml" in used["community.crypto"]
    assert not {c for c in used if c.startswith(("collector.", "storage.", "tsdb."))}


def test_every_collection_called_by_fqcn_is_required_and_a_dependency() -> None:
    used = collections_used()
    required = requirements()
    dependencies = galaxy()["dependencies"]
    missing = {c: sorted(files) for c, files in used.items() if c not in required}
    assert not missing, f"add these to ansible/requirements.yml: {missing}"
    undeclared = {c: sorted(files) for c, files in used.items() if c not in dependencies}
    assert not undeclared, f"add these to galaxy.yml's dependencies: {undeclared}"
    assert set(required) == set(dependencies), "requirements.yml and galaxy.yml list the same collections"


def test_required_versions_are_the_ones_the_pinned_ansible_package_ships() -> None:
    for collection, version in requirements().items():
        assert version == shipped_version(collection), collection


def _admits(spec: str, version: str) -> bool:
    def key(v: str) -> tuple[int, ...]:
        return tuple(int(part) for part in v.split("."))

    checks = {">=": lambda a, b: a >= b, "<": lambda a, b: a < b, "==": lambda a, b: a == b,
              ">": lambda a, b: a > b, "<=": lambda a, b: a <= b}  # fmt: skip
    for clause in spec.split(","):
        match = re.fullmatch(r"\s*(>=|<=|==|<|>)\s*([0-9.]+)\s*", clause)
        assert match, f"unexpected version clause {clause!r}"
        if not checks[match[1]](key(version), key(match[2])):
            return False
    return True


def test_galaxy_dependencies_admit_the_shipped_versions() -> None:
    for collection, spec in galaxy()["dependencies"].items():
        assert _admits(spec, shipped_version(collection)), (collection, spec)


def test_galaxy_yml_names_the_collection_and_ansible_core() -> None:
    data = galaxy()
    assert (data["namespace"], data["name"]) == ("vpsfleet", "platform")
    assert (ANSIBLE_DIR / data["readme"]).is_file()
    runtime = yaml.safe_load((ANSIBLE_DIR / "meta" / "runtime.yml").read_text())
    core = subprocess.run([str(BIN / "ansible"), "--version"], capture_output=True, text=True,
                          check=True).stdout  # fmt: skip
    installed = re.search(r"core ([0-9.]+)", core)
    assert installed
    assert _admits(runtime["requires_ansible"], installed[1])


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("collection")
    result = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "build", str(ANSIBLE_DIR), "--output-path", str(out)],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    (built,) = out.glob("vpsfleet-platform-*.tar.gz")
    return built


def test_the_tarball_holds_roles_playbooks_and_plugins_and_no_tests(tarball: Path) -> None:
    with tarfile.open(tarball) as archive:
        names = set(archive.getnames())
    for role in ("guest_base", "backup_agent", "backup_store", "monitor", "monitoring_agent", "patching"):
        assert f"roles/{role}/tasks/main.yml" in names, role
        assert f"roles/{role}/meta/argument_specs.yml" in names, role
    assert "playbooks/site.yml" in names
    assert "plugins/inventory/vpsfleet.py" in names
    assert "plugins/filter/vpsfleet_secrets.py" in names
    assert {"MANIFEST.json", "FILES.json", "meta/runtime.yml", "README.md"} <= names
    # Molecule scenarios, caches and the checkout's own ansible.cfg stay out.
    assert not [n for n in names if "/molecule" in n or "__pycache__" in n or n.endswith(".pyc")]
    assert "ansible.cfg" not in names


def test_the_tarball_installs_offline_and_its_plugin_reads_the_fleet(tarball: Path, tmp_path: Path) -> None:
    """What a user does with the tarball: install it (the dependencies are already there, from the
    `ansible` package), then name the plugin by its FQCN; no checkout, no ansible.cfg."""
    collections = tmp_path / "collections"
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env |= {"NO_COLOR": "1", "HOME": str(tmp_path), "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    install = subprocess.run(
        [str(BIN / "ansible-galaxy"), "collection", "install", "--offline", "-p", str(collections),
         str(tarball)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert install.returncode == 0, install.stderr
    installed = collections / "ansible_collections" / "vpsfleet" / "platform"
    assert (installed / "plugins" / "inventory" / "vpsfleet.py").is_file()
    assert (installed / "roles" / "backup_agent" / "tasks" / "main.yml").is_file()

    source = tmp_path / "inventory" / "vpsfleet.yml"
    source.parent.mkdir()
    source.write_text(f"plugin: vpsfleet.platform.vpsfleet\nfleet: {REPO / 'inventories/lab/fleet.yml'}\n")
    env |= {"ANSIBLE_COLLECTIONS_PATH": str(collections),
            "ANSIBLE_INVENTORY_ENABLED": "vpsfleet.platform.vpsfleet"}  # fmt: skip
    # The installed copy is the one Ansible finds, not the checkout's.
    doc = subprocess.run(
        [str(BIN / "ansible-doc"), "-t", "inventory", "vpsfleet.platform.vpsfleet"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert doc.returncode == 0, doc.stderr
    assert str(installed / "plugins" / "inventory" / "vpsfleet.py") in doc.stdout
    listing = subprocess.run(
        [str(BIN / "ansible-inventory"), "-i", str(source), "--list", "-vvv"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    data = json.loads(listing.stdout[listing.stdout.index("{"):])
    assert set(data["guests"]["hosts"]) == {"alpha-web", "alpha-app", "bravo-vps", "bravo-dev"}
