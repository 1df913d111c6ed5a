"""lab-apt-repo-build (built by vpsfleet.agent_build for role lab_apt_repo): builds the lab's
(and the tests') apt archives from a JSON spec, on any Debian with python3 and dpkg-deb (the
method of issue 5's test repositories, moved here: packages made with dpkg-deb, indexed with a
Release whose Origin/Label/Codename unattended-upgrades matches).

    lab-apt-repo-build SPEC.json OUT [--check]

The spec lists archives; each becomes OUT/NAME/{pool,dists/SUITE/COMPONENT/binary-*/Packages*,
dists/SUITE/Release}:

    {"archives": [{"name": "security", "origin": "Debian", "label": "Debian-Security",
                   "suite": "bookworm-security", "component": "main",
                   "rebuilds": [{"package": "pigz", "suffix": "+lab1", "reboot": true}],
                   "packages": [{"name": "vpsfleet-sec-demo", "version": "1.1", "postinst": ""}],
                   "debs_dir": "/var/tmp/incoming"}]}

- `rebuilds`: a new version (installed version + suffix) of a package installed on this machine,
  made from its installed files and maintainer scripts (what dpkg-repack does): an update of a
  package the guests have, when they run the same image. `reboot: true` makes its postinst flag
  /run/reboot-required as a kernel's does (the lab's containers share the host's kernel, so
  there is no kernel package to update).
- `packages`: one-file packages built from nothing (`postinst`: a shell body, run with `set -e`).
- `debs_dir`: .deb files copied into the pool as they are (the tools the guests lack).

A package file whose name (name_version_arch) is already in the pool is never rebuilt: a version
is immutable, as in a real archive. Indexes are rewritten only when their text changes, so a
second run writes nothing. Prints {"changed": bool, "written": [...], "packages": {archive: [...]}}.
Standard library only; needs dpkg-deb and dpkg-query. Unsigned: clients list it [trusted=yes].
"""

from __future__ import annotations

import argparse
import email.utils
import gzip
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ARCHITECTURES = ("amd64", "all")
DPKG_INFO = Path("/var/lib/dpkg/info")
# Status fields that describe the installation, not the package.
NOT_CONTROL = {"status", "conffiles", "config-version"}
MAINTAINER_SCRIPTS = ("preinst", "postinst", "prerm", "postrm")
DEFAULT_EPOCH = 1_704_067_200  # 2024-01-01: file times inside built packages (reproducible)


class BuildError(Exception):
    """What stops the build, said to the operator (exit 1)."""


@dataclass
class Result:
    check: bool
    written: list[str] = field(default_factory=list)
    packages: dict[str, list[str]] = field(default_factory=dict)

    def write(self, path: Path, data: bytes) -> None:
        """Writes `path` only when its bytes change (atomically); notes it either way."""
        if path.exists() and path.read_bytes() == data:
            return
        self.written.append(str(path))
        if self.check:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_bytes(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)


def run(argv: list[str], **kwargs: Any) -> str:
    done = subprocess.run(argv, capture_output=True, text=True, check=False, **kwargs)
    if done.returncode != 0:
        raise BuildError(f"{' '.join(argv)}: exit {done.returncode}: {done.stderr.strip()}")
    return str(done.stdout)


def parse_stanza(text: str) -> list[tuple[str, str]]:
    """A deb822 stanza as (field, value) pairs, continuation lines kept in the value."""
    fields: list[tuple[str, str]] = []
    for line in text.splitlines():
        if not line.strip():
            continue
        if line[0] in " \t" and fields:
            name, value = fields[-1]
            fields[-1] = (name, f"{value}\n{line}")
        else:
            name, _, value = line.partition(":")
            fields.append((name.strip(), value.strip()))
    return fields


def deb_name(package: str, version: str, arch: str) -> str:
    return f"{package}_{version.split(':', 1)[-1]}_{arch}.deb"


def dpkg_deb_build(root: Path, dest: Path, epoch: int) -> None:
    env = {**os.environ, "SOURCE_DATE_EPOCH": str(epoch)}
    run(["dpkg-deb", "--root-owner-group", "-Zxz", "--build", str(root), str(dest)], env=env)


def reboot_flag(package: str) -> str:
    """What a kernel's postinst does (Debian's /etc/kernel/postinst.d hooks): flag the reboot and
    say which package asked for it."""
    return (
        'if [ "$1" = configure ]; then\n'
        "  touch /var/run/reboot-required\n"
        f"  echo {package} >>/var/run/reboot-required.pkgs\n"
        "fi\n"
    )


def build_new(spec: dict[str, Any], pool: Path, work: Path, epoch: int, result: Result) -> str:
    """A one-file package built from nothing (the tests' demo packages)."""
    name, version = str(spec["name"]), str(spec["version"])
    target = pool / deb_name(name, version, "all")
    if target.exists():
        return target.name
    root = work / f"{name}-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "usr/share/vpsfleet-demo").mkdir(parents=True)
    (root / f"usr/share/vpsfleet-demo/{name}.version").write_text(f"{version}\n", encoding="utf-8")
    (root / "DEBIAN/control").write_text(
        f"Package: {name}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: vpsfleet tests <ops@test.example.net>\nSection: misc\nPriority: optional\n"
        f"Description: vpsfleet patching test package ({version})\n"
        " A package that exists only in the lab's and the tests' apt repositories.\n",
        encoding="utf-8",
    )
    postinst = str(spec.get("postinst") or "")
    if spec.get("reboot"):
        postinst += "\n" + reboot_flag(name)
    if postinst.strip():
        script = root / "DEBIAN/postinst"
        script.write_text(f"#!/bin/sh\nset -e\n{postinst}\n", encoding="utf-8")
        script.chmod(0o755)
    result.written.append(str(target))
    if not result.check:
        dpkg_deb_build(root, target, epoch)
    return target.name


def info_file(package: str, arch: str, suffix: str) -> Path:
    """dpkg's file about an installed package (Multi-Arch: same ones carry the architecture)."""
    plain = DPKG_INFO / f"{package}.{suffix}"
    return plain if plain.exists() else DPKG_INFO / f"{package}:{arch}.{suffix}"


def rebuild(spec: dict[str, Any], pool: Path, work: Path, epoch: int, result: Result) -> str:
    """A new version of a package installed here, from its installed files and scripts."""
    package, suffix = str(spec["package"]), str(spec.get("suffix") or "+lab1")
    stanza = run(["dpkg-query", "--status", package])
    fields = [(k, v) for k, v in parse_stanza(stanza) if k.lower() not in NOT_CONTROL]
    values = {k.lower(): v for k, v in fields}
    if "install ok installed" not in parse_status(stanza):
        raise BuildError(f"{package} is not installed here: nothing to rebuild")
    version, arch = values["version"] + suffix, values["architecture"]
    target = pool / deb_name(package, version, arch)
    if target.exists():
        return target.name
    root = work / f"{package}-{version}"
    control = root / "DEBIAN"
    control.mkdir(parents=True)
    listed = info_file(package, arch, "list").read_text(encoding="utf-8").splitlines()
    # Folders the package ships that are links here (merged /usr: /lib, /bin...) stay folders.
    parents = {str(Path(p).parent) for p in listed}
    for path in listed:
        copy_installed(Path(path), root, as_dir=path in parents)
    lines = [f"{k}: {version if k.lower() == 'version' else v}" for k, v in fields]
    (control / "control").write_text("\n".join(lines) + "\n", encoding="utf-8")
    for name in (*MAINTAINER_SCRIPTS, "md5sums", "conffiles", "triggers", "shlibs", "symbols"):
        source = info_file(package, arch, name)
        if source.exists():
            shutil.copyfile(source, control / name)
            (control / name).chmod(0o755 if name in MAINTAINER_SCRIPTS else 0o644)
    if spec.get("reboot"):
        postinst = control / "postinst"
        body = postinst.read_text(encoding="utf-8") if postinst.exists() else "#!/bin/sh\nset -e\n"
        # Before a final `exit 0` of the packaged script, if it has one.
        head, sep, tail = body.rpartition("\nexit 0")
        body = f"{head}\n{reboot_flag(package)}{sep}{tail}" if sep else body + "\n" + reboot_flag(package)
        postinst.write_text(body, encoding="utf-8")
        postinst.chmod(0o755)
    result.written.append(str(target))
    if not result.check:
        dpkg_deb_build(root, target, epoch)
    return target.name


def parse_status(stanza: str) -> str:
    return next((v for k, v in parse_stanza(stanza) if k.lower() == "status"), "")


def copy_installed(path: Path, root: Path, as_dir: bool = False) -> None:
    """One entry of the package's file list into the tree: directories, links and files as they
    are on this machine (dpkg-deb --root-owner-group makes them root's)."""
    if str(path) in ("/.", "/"):
        return
    dest = root / str(path).lstrip("/")
    if as_dir and path.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        dest.chmod(0o755)
    elif path.is_symlink():
        dest.parent.mkdir(parents=True, exist_ok=True)
        dest.symlink_to(os.readlink(path))
    elif path.is_dir():
        dest.mkdir(parents=True, exist_ok=True)
        dest.chmod(path.stat().st_mode & 0o7777)
    elif path.is_file():
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, dest)
    # A listed path that is gone (diverted, removed by the admin) is left out.


def packages_index(pool: Path) -> bytes:
    """The Packages file of every .deb in the pool, its control fields then where and what."""
    stanzas = []
    for deb in sorted(pool.glob("*.deb")):
        data = deb.read_bytes()
        control = run(["dpkg-deb", "--field", str(deb)]).rstrip("\n")
        stanzas.append(
            f"{control}\nFilename: pool/{deb.name}\nSize: {len(data)}\n"
            f"MD5sum: {hashlib.md5(data).hexdigest()}\nSHA256: {hashlib.sha256(data).hexdigest()}\n"
        )
    return "\n".join(stanzas).encode()


def release(archive: dict[str, Any], files: dict[str, bytes], epoch: int) -> bytes:
    """The Release fields unattended-upgrades' Origins-Pattern matches (origin, label, codename),
    and the indexes' sizes and hashes."""
    suite = str(archive["suite"])
    lines = [
        f"Origin: {archive.get('origin', 'Debian')}",
        f"Label: {archive.get('label', 'Debian')}",
        f"Suite: {suite}",
        f"Codename: {suite}",
        f"Date: {email.utils.formatdate(epoch, usegmt=True)}",
        f"Architectures: {' '.join(ARCHITECTURES)}",
        f"Components: {archive.get('component', 'main')}",
        f"Description: {archive.get('description', 'vpsfleet lab archive ' + str(archive['name']))}",
    ]
    for title, algorithm in (("MD5Sum", hashlib.md5), ("SHA256", hashlib.sha256)):
        lines.append(f"{title}:")
        lines += [
            f" {algorithm(data).hexdigest()} {len(data)} {name}" for name, data in sorted(files.items())
        ]
    return ("\n".join(lines) + "\n").encode()


def build_archive(archive: dict[str, Any], out: Path, work: Path, epoch: int, result: Result) -> None:
    name = str(archive["name"])
    pool = out / name / "pool"
    if not result.check:
        pool.mkdir(parents=True, exist_ok=True)
    made = [rebuild(spec, pool, work, epoch, result) for spec in archive.get("rebuilds", [])]
    made += [build_new(spec, pool, work, epoch, result) for spec in archive.get("packages", [])]
    debs_dir = archive.get("debs_dir")
    if debs_dir:
        for deb in sorted(Path(str(debs_dir)).glob("*.deb")):
            result.write(pool / deb.name, deb.read_bytes())
            made.append(deb.name)
    result.packages[name] = sorted(made)
    if result.check and not pool.exists():
        return
    component = str(archive.get("component", "main"))
    packages = packages_index(pool)
    files: dict[str, bytes] = {}
    for arch in ARCHITECTURES:
        files[f"{component}/binary-{arch}/Packages"] = packages
        files[f"{component}/binary-{arch}/Packages.gz"] = gzip.compress(packages, 9, mtime=0)
    dist = out / name / "dists" / str(archive["suite"])
    for relative, data in files.items():
        result.write(dist / relative, data)
    # The Release's Date is the newest package's time: unchanged packages, unchanged Release.
    newest = max((int(p.stat().st_mtime) for p in pool.glob("*.deb")), default=epoch)
    result.write(dist / "Release", release(archive, files, newest))


def build(spec: dict[str, Any], out: Path, check: bool = False) -> Result:
    result = Result(check=check)
    epoch = int(spec.get("epoch", DEFAULT_EPOCH))
    with tempfile.TemporaryDirectory(prefix="lab-apt-repo-") as tmp:
        for archive in spec["archives"]:
            build_archive(archive, out, Path(tmp), epoch, result)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="lab-apt-repo-build", description=__doc__.splitlines()[0])
    parser.add_argument("spec", type=Path, help="the archives, JSON")
    parser.add_argument("out", type=Path, help="the repository's folder (one subfolder per archive)")
    parser.add_argument("--check", action="store_true", help="say what would change, write nothing")
    args = parser.parse_args(argv)
    os.umask(0o022)  # dpkg-deb refuses a DEBIAN folder that is not 0755-ish
    try:
        result = build(json.loads(args.spec.read_text(encoding="utf-8")), args.out, args.check)
    except (BuildError, OSError, KeyError, ValueError) as error:
        print(json.dumps({"failed": True, "msg": str(error)}))
        return 1
    print(
        json.dumps({"changed": bool(result.written), "written": result.written, "packages": result.packages})
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
