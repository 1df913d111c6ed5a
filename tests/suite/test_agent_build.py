"""The build of the programs shipped to machines (vpsfleet.agent_build): one runnable file each,
the same bytes for the same sources (so a second deployment changes nothing), never a zip whose
entry is missing, and never a built file that git would track."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pytest

from vpsfleet import agent_build
from vpsfleet.agent_build import ARTIFACTS, Artifact

REPO = Path(__file__).resolve().parents[2]


def _tree(tmp_path: Path, body: str) -> Path:
    """A repository holding a one-module vpsfleet_agents package whose main prints `body`."""
    package = tmp_path / agent_build.PACKAGE
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "hello.py").write_text(f"def main() -> int:\n    print({body!r})\n    return 3\n")
    return tmp_path


HELLO = Artifact("hello", "vpsfleet_agents.hello:main", "out")


def test_an_artifact_runs_with_the_system_python_and_keeps_the_exit_status(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path, "bonjour")
    monkeypatch.setattr(agent_build, "ARTIFACTS", (HELLO,))
    assert agent_build.build(root) == [root / "out" / "hello"]
    built = root / "out" / "hello"
    assert built.read_bytes().startswith(b"#!/usr/bin/python3\n")
    assert built.stat().st_mode & 0o777 == 0o755
    run = subprocess.run([sys.executable, str(built)], capture_output=True, text=True, check=False)
    assert (run.returncode, run.stdout) == (3, "bonjour\n")


def test_same_sources_same_bytes_and_nothing_rewritten(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path, "x")
    monkeypatch.setattr(agent_build, "ARTIFACTS", (HELLO,))
    first = agent_build.build_bytes(HELLO, root)
    (root / agent_build.PACKAGE / "hello.py").touch()  # a new mtime alone changes nothing
    assert agent_build.build_bytes(HELLO, root) == first
    agent_build.build(root)
    assert agent_build.build(root) == []
    assert agent_build.stale(root) == []


def test_a_changed_source_makes_the_artifact_stale(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = _tree(tmp_path, "x")
    monkeypatch.setattr(agent_build, "ARTIFACTS", (HELLO,))
    agent_build.build(root)
    (root / agent_build.PACKAGE / "hello.py").write_text("def main() -> int:\n    return 0\n")
    assert agent_build.stale(root) == [root / "out" / "hello"]


def test_caches_are_not_shipped(tmp_path: Path) -> None:
    root = _tree(tmp_path, "x")
    cache = root / agent_build.PACKAGE / "__pycache__"
    cache.mkdir()
    (cache / "hello.cpython-311.py").write_text("")
    data = agent_build.build_bytes(HELLO, root)
    (root / "built.zip").write_bytes(data[len(agent_build.INTERPRETER) :])
    names = zipfile.ZipFile(root / "built.zip").namelist()
    assert names == ["__main__.py", "vpsfleet_agents/__init__.py", "vpsfleet_agents/hello.py"]


@pytest.mark.parametrize("entry", ["vpsfleet_agents.nowhere:main", "vpsfleet_agents.hello:absent"])
def test_an_entry_that_does_not_exist_is_refused(tmp_path: Path, entry: str) -> None:
    root = _tree(tmp_path, "x")
    with pytest.raises(SystemExit, match="no function"):
        agent_build.build_bytes(Artifact("broken", entry, "out"), root)


@pytest.mark.parametrize("artifact", ARTIFACTS, ids=[a.name for a in ARTIFACTS])
def test_every_artifact_is_ignored_by_git_and_its_entry_exists(artifact: Artifact) -> None:
    agent_build.check_entry(artifact)
    path = f"{artifact.folder}/{artifact.name}"
    ignored = subprocess.run(["git", "check-ignore", "-q", "--no-index", path], cwd=REPO, check=False)
    assert ignored.returncode == 0, f"{path} is built: it must be in .gitignore"


def test_built_gives_every_path_by_name_and_builds_only_what_is_stale(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    root = _tree(tmp_path, "x")
    monkeypatch.setattr(agent_build, "ARTIFACTS", (HELLO,))
    assert agent_build.built(root) == {"hello": root / "out" / "hello"}
    before = (root / "out" / "hello").stat().st_mtime_ns
    assert agent_build.built(root) == {"hello": root / "out" / "hello"}
    assert (root / "out" / "hello").stat().st_mtime_ns == before


# Imports every module of an artifact from the artifact alone (-S: no site-packages, so neither
# the checkout nor an installed copy can stand in for a module the build left out); a missing
# third-party library is the machine's business (Debian packages), a missing package module is
# the build's fault.
IMPORT_ALL = """
import importlib, sys, zipfile
path = sys.argv[1]
sys.path.insert(0, path)
names = sorted(n[:-3].replace("/", ".").removesuffix(".__init__")
               for n in zipfile.ZipFile(path).namelist() if n.endswith(".py") and n != "__main__.py")
for name in names:
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as err:
        if (err.name or "").startswith("vpsfleet_agents"):
            raise
        continue
    assert module.__file__ and module.__file__.startswith(path), (name, module.__file__)
print(len(names))
"""


@pytest.mark.parametrize("artifact", ARTIFACTS, ids=[a.name for a in ARTIFACTS])
def test_an_artifact_holds_every_module_its_entry_imports(artifact: Artifact) -> None:
    data = agent_build.build_bytes(artifact)
    with zipfile.ZipFile(io.BytesIO(data[len(agent_build.INTERPRETER) :])) as archive:
        names = set(archive.namelist())
    module = artifact.entry.partition(":")[0]
    assert module.replace(".", "/") + ".py" in names or module.replace(".", "/") + "/__init__.py" in names
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / artifact.name
        path.write_bytes(data)
        result = subprocess.run(
            [sys.executable, "-S", "-c", IMPORT_ALL, str(path)], capture_output=True, text=True, timeout=60
        )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) >= 2


def test_an_edit_to_one_program_leaves_the_others_bytes_unchanged(tmp_path: Path) -> None:
    """Only the programs that import what changed are rebuilt, so only they are reinstalled."""
    shutil.copytree(
        REPO / agent_build.PACKAGE,
        tmp_path / agent_build.PACKAGE,
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    by_name = {a.name: a for a in ARTIFACTS}
    before = {name: agent_build.build_bytes(a, tmp_path) for name, a in by_name.items()}
    traffic = tmp_path / agent_build.PACKAGE / "traffic" / "cycle.py"
    traffic.write_text(traffic.read_text() + "\n# an edit\n")
    after = {name: agent_build.build_bytes(a, tmp_path) for name, a in by_name.items()}
    assert after["vpsfleet-traffic"] != before["vpsfleet-traffic"]
    assert after["vpsfleet-backup"] == before["vpsfleet-backup"]
    assert after["vpsfleet-backup-store"] == before["vpsfleet-backup-store"]
    # The backup agent does not carry the hosts' traffic job nor the notices' templates.
    with zipfile.ZipFile(io.BytesIO(after["vpsfleet-backup"][len(agent_build.INTERPRETER) :])) as z:
        assert not [
            n for n in z.namelist() if n.startswith(("vpsfleet_agents/traffic/", "vpsfleet_agents/notices/"))
        ]
    with zipfile.ZipFile(io.BytesIO(after["vpsfleet-traffic"][len(agent_build.INTERPRETER) :])) as z:
        assert any(n.endswith(".j2") for n in z.namelist())  # the notice's templates travel with it
