"""The sandbox every process that reads a set's content runs in: an unprivileged account, no new
privileges, a clean environment, a network namespace of its own where the host allows it; and the
root-only folders the verification writes to."""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any


class Usage(Exception):
    """A request that cannot run as given (exit 2)."""


def program(name: str) -> str:
    """An absolute path: the sandbox's environment has a minimal PATH."""
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/bin:/sbin:/bin")
    if not found:
        raise Usage(f"{name} is not installed")
    return found


class Sandbox:
    """Runs a program as the unprivileged account, with no new privileges and no capabilities,
    a clean environment, and in a network namespace of its own where the host allows it."""

    def __init__(self, user: str, network: str) -> None:
        try:
            entry = pwd.getpwnam(user)
        except KeyError as err:
            raise Usage(
                f"no account {user!r} to run the scratch database as (verify-backups.yml creates it)"
            ) from err
        if entry.pw_uid == 0 or entry.pw_gid == 0:
            raise Usage(f"{user!r} is root: the scratch database never runs as root")
        self.user, self.uid, self.gid = entry.pw_name, entry.pw_uid, entry.pw_gid
        self.setpriv = shutil.which("setpriv") or "/usr/bin/setpriv"
        unshare = shutil.which("unshare")
        self.unshare: str | None = None
        if network != "off" and unshare:
            probe = subprocess.run([unshare, "--net", "true"], capture_output=True, check=False)
            self.unshare = unshare if probe.returncode == 0 else None
        if network == "required" and self.unshare is None:
            raise Usage("--network-namespace=required, but this host cannot make one (unshare --net)")

    def wrap(self, argv: list[str]) -> list[str]:
        prefix = [self.unshare, "--net", "--"] if self.unshare else []
        return [
            *prefix, self.setpriv, f"--reuid={self.uid}", f"--regid={self.gid}", "--clear-groups",
            "--no-new-privs", "--inh-caps=-all", "--reset-env", "--", *argv,
        ]  # fmt: skip

    def describe(self) -> dict[str, Any]:
        return {"user": self.user, "network_namespace": self.unshare is not None,
                "client": "mariadb --sandbox --binary-mode --local-infile=0"}  # fmt: skip


def check_private(path: Path, group: int | None = None) -> None:
    """`path` is a real folder of root's that nobody else can write to, below folders nobody else
    can swap (root's, or sticky like /var/tmp); made if missing (mode 0700, or 0710 for `group`)."""
    mode = 0o710 if group is not None else 0o700
    for parent in reversed(path.parents):
        info = os.lstat(parent)
        if stat.S_ISLNK(info.st_mode) and parent != Path("/"):
            raise Usage(f"{parent} is a symbolic link: {path} is refused")
        if info.st_uid != 0 or (info.st_mode & 0o022 and not info.st_mode & stat.S_ISVTX):
            raise Usage(f"{parent} can be changed by another account than root: {path} is refused")
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != 0:
        raise Usage(f"{path} is not a folder of root's (a symbolic link, or another owner): refused")
    os.chmod(path, mode)
    os.chown(path, 0, 0 if group is None else group)


def disk_use(path: Path) -> int:
    """Bytes on disk under `path` (links not followed)."""
    total = 0
    for folder, _dirs, names in os.walk(path):
        for name in names:
            with contextlib.suppress(OSError):
                total += os.lstat(os.path.join(folder, name)).st_blocks * 512
    return total
