"""Builds the programs shipped to machines (package `vpsfleet_agents`) as single executable files.

Each artifact is a zip application (PEP 441: a `#!/usr/bin/python3` line, then a zip holding the
modules of the package its entry imports, and a `__main__`) written into the files folder of the
role that installs it, where Ansible's `copy` finds it. The build is reproducible: entries
sorted, fixed timestamps and modes, so an unchanged source gives the same bytes and a second
deployment changes nothing. An artifact holds only its entry's import closure (and the data of
the packages in it): an edit to one program does not change, and so does not reinstall on every
machine, the programs that do not import what changed.

    python -m vpsfleet.agent_build          # build every artifact
    python -m vpsfleet.agent_build --check  # exit 1 if an artifact is missing or stale
"""

from __future__ import annotations

import argparse
import ast
import io
import os
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "vpsfleet_agents"
INTERPRETER = b"#!/usr/bin/python3\n"
# The zip format cannot store dates before 1980: every entry gets this one.
EPOCH = (1980, 1, 1, 0, 0, 0)


@dataclass(frozen=True)
class Artifact:
    name: str  # the installed program's name
    entry: str  # "module:function"; the function returns the exit status (or None for 0)
    folder: str  # where the role that installs it looks, relative to the repository


# One row per program shipped to machines.
ARTIFACTS: tuple[Artifact, ...] = (
    Artifact("vpsfleet-patch-notice", "vpsfleet_agents.patching.notice:main", "ansible/roles/patching/files"),
    Artifact(
        "vpsfleet-security-pending",
        "vpsfleet_agents.patching.security_pending:main",
        "ansible/roles/patching/files",
    ),
    Artifact("vpsfleet-mail-sink", "vpsfleet_agents.mail_sink:main", "ansible/roles/mail_sink/files"),
    Artifact("lab-apt-repo-build", "vpsfleet_agents.lab_apt_repo:main", "ansible/roles/lab_apt_repo/files"),
    Artifact("vpsfleet-backup", "vpsfleet_agents.backup.cli:main", "ansible/roles/backup_agent/files"),
    Artifact(
        "vpsfleet-backup-failure-mail",
        "vpsfleet_agents.backup.failure_mail:main",
        "ansible/roles/backup_agent/files",
    ),
    Artifact("vpsfleet-verify-backup", "vpsfleet_agents.verify.cli:main", "ansible/roles/backup_store/files"),
    Artifact("vpsfleet-backup-store", "vpsfleet_agents.store.cli:main", "ansible/roles/backup_store/files"),
    Artifact("vpsfleet-traffic", "vpsfleet_agents.traffic.cli:main", "ansible/roles/hypervisor/files"),
    Artifact("vpsfleet-audit", "vpsfleet_agents.audit.cli:main", "ansible/roles/monitor/files"),
)


# What a program needs beside its modules: the notices' Jinja2 templates (vpsfleet_agents/notices).
DATA = ("*.j2",)


def sources(root: Path = ROOT) -> list[Path]:
    """The package's Python files and the data they read, sorted (no caches, no tests)."""
    found = {p for pattern in ("*.py", *DATA) for p in (root / PACKAGE).rglob(pattern)}
    return sorted(p for p in found if "__pycache__" not in p.parts)


def _module_file(root: Path, module: str) -> Path | None:
    path = root.joinpath(*module.split("."))
    for candidate in (path.with_suffix(".py"), path / "__init__.py"):
        if candidate.is_file():
            return candidate
    return None


def _imported(tree: ast.Module, module: str, is_package: bool) -> set[str]:
    """The package's modules a module's source names in its imports (absolute or relative;
    `from a import b` counts b as a module when it is one)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = module.split(".")
                keep = len(parts) - node.level + (1 if is_package else 0)
                base = ".".join(parts[:keep] + ([base] if base else []))
            names.add(base)
            names.update(f"{base}.{alias.name}" for alias in node.names)
    return {n for n in names if n == PACKAGE or n.startswith(PACKAGE + ".")}


def closure(entry_module: str, root: Path = ROOT) -> list[Path]:
    """The files an entry needs: every package module it imports, transitively, with the
    `__init__.py` of each package on the way (Python runs them on import) and the data files
    (DATA) under the folder of each package it holds."""
    files: set[Path] = set()
    pending = [entry_module]
    seen: set[str] = set()
    while pending:
        module = pending.pop()
        if module in seen:
            continue
        seen.add(module)
        parts = module.split(".")
        pending.extend(".".join(parts[:i]) for i in range(1, len(parts)))  # parent packages
        path = _module_file(root, module)
        if path is None:
            continue  # `from package import name` where name is not a module
        files.add(path)
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        pending.extend(_imported(tree, module, path.name == "__init__.py"))
    packages = {p.parent for p in files if p.name == "__init__.py"}
    data = (p for p in sources(root) if p.suffix != ".py")
    files.update(p for p in data if _owning_package(p) in packages)
    return sorted(p for p in files if "__pycache__" not in p.parts)


def _owning_package(path: Path) -> Path:
    """The folder of the innermost package a data file sits in (`notices/templates/x.j2`
    belongs to `notices`, whose code reads it)."""
    folder = path.parent
    while not (folder / "__init__.py").is_file() and folder != folder.parent:
        folder = folder.parent
    return folder


def main_module(entry: str) -> str:
    module, function = entry.split(":")
    return f"import sys\n\nfrom {module} import {function}\n\nsys.exit({function}())\n"


def check_entry(artifact: Artifact, root: Path = ROOT) -> None:
    """Refuse an entry whose module is not in the package (a zip that could only fail on the
    machine)."""
    module, _, function = artifact.entry.partition(":")
    path = root.joinpath(*module.split("."))
    source = path.with_suffix(".py") if path.with_suffix(".py").is_file() else path / "__init__.py"
    if not source.is_file() or f"def {function}(" not in source.read_text(encoding="utf-8"):
        raise SystemExit(f"{artifact.name}: no function {function} in module {module}")


def build_bytes(artifact: Artifact, root: Path = ROOT) -> bytes:
    check_entry(artifact, root)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        module = artifact.entry.partition(":")[0]
        entries = [(p.relative_to(root).as_posix(), p.read_bytes()) for p in closure(module, root)]
        entries.append(("__main__.py", main_module(artifact.entry).encode()))
        for name, data in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=EPOCH)
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data, compresslevel=9)
    return INTERPRETER + buffer.getvalue()


def target(artifact: Artifact, root: Path = ROOT) -> Path:
    return root / artifact.folder / artifact.name


def build(root: Path = ROOT) -> list[Path]:
    """Write every artifact whose bytes changed; returns the paths written."""
    written = []
    for artifact in ARTIFACTS:
        path = target(artifact, root)
        data = build_bytes(artifact, root)
        if path.exists() and path.read_bytes() == data:
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        # A temporary name of its own: two test workers may build at once; the last rename wins
        # and both wrote the same bytes.
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.chmod(tmp, 0o755)
        os.replace(tmp, path)
        written.append(path)
    return written


def built(root: Path = ROOT) -> dict[str, Path]:
    """Build what is stale and return every artifact's path by program name (the tests run the
    very files the roles install). Safe in parallel: each writer renames its own temporary file
    and all write the same bytes."""
    build(root)
    return {a.name: target(a, root) for a in ARTIFACTS}


def stale(root: Path = ROOT) -> list[Path]:
    return [
        target(a, root)
        for a in ARTIFACTS
        if not target(a, root).exists() or target(a, root).read_bytes() != build_bytes(a, root)
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m vpsfleet.agent_build", description="Build the programs shipped to machines."
    )
    parser.add_argument("--check", action="store_true", help="only report missing or stale artifacts")
    args = parser.parse_args(argv)
    if args.check:
        bad = stale()
        for path in bad:
            print(f"stale or missing: {path.relative_to(ROOT)}", file=sys.stderr)
        return 1 if bad else 0
    for path in build():
        print(f"built {path.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
