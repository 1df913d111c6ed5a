"""The store's tree, `<root>/<customer>/<guest>/<YYYY-MM-DD>/`, walked and changed without ever
following a symbolic link: a tenant's link would lead out of the store."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

# Beside the guests' trees, in each customer's folder: the store's own records, root's (0755),
# out of reach of the guests' accounts (chrooted below) and read-only to the customer's.
META = ".vpsfleet"


class TenantError(Exception):
    """What one tenant's tree holds that a step cannot work with; reported for that tenant."""


def guest_folder(config: dict[str, Any], guest: dict[str, Any]) -> Path:
    return Path(config["root"], guest["customer"], guest["guest"])


def meta_folder(config: dict[str, Any], customer: str) -> Path:
    return Path(config["root"], customer, META)


def _kind(mode: int) -> str:
    return "a symbolic link" if stat.S_ISLNK(mode) else "not a folder"


def customer_checked(config: dict[str, Any], customer: str) -> Path:
    """The customer's folder, which must be a real folder (or not there yet): a path through a
    link would lead out of the store (the kernel follows links in the middle of a path)."""
    path = Path(config["root"], customer)
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return path
    if not stat.S_ISDIR(info.st_mode):
        raise TenantError(
            f"the customer's folder {path} is {_kind(info.st_mode)}: not followed, nothing done there"
        )
    return path


def folder_checked(folder: Path) -> bool:
    """True if `folder` is a real folder, False if it is not there; raises TenantError for a
    link or anything else."""
    try:
        info = os.lstat(folder)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(info.st_mode):
        raise TenantError(f"{folder} is {_kind(info.st_mode)}: not followed, nothing done there")
    return True


def is_folder(path: Path) -> bool:
    """A real folder (a symbolic link to one is not)."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except FileNotFoundError:
        return False


def tree_size(path: Path) -> tuple[int, int]:
    """Bytes and number of regular files under `path`; symbolic links are never followed, not
    even `path` itself, and unreadable entries count for nothing."""
    if not is_folder(path):
        return 0, 0
    total = files = 0
    for folder, _dirs, names in os.walk(path):
        for name in names:
            try:
                info = os.lstat(os.path.join(folder, name))
            except OSError:
                continue
            if stat.S_ISREG(info.st_mode):
                total += info.st_size
                files += 1
    return total, files


def remove_tree(path: Path) -> None:
    """Removes `path` without following links: a link or a file goes itself, a folder with what
    it holds (shutil.rmtree does not follow the links inside)."""
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return
    if stat.S_ISDIR(info.st_mode):
        shutil.rmtree(path)
    else:
        os.unlink(path)


def store_folder(config: dict[str, Any], customer: str, *parts: str) -> Path:
    """`<root>/<customer>/.vpsfleet/<parts...>`, each level made if missing (root's, 0755) and
    checked to be the store's own real folder, never a link."""
    customer_checked(config, customer)
    folder = meta_folder(config, customer)
    for level in (folder, *(folder.joinpath(*parts[: n + 1]) for n in range(len(parts)))):
        if not os.path.lexists(level):
            os.mkdir(level, 0o755)
        info = os.lstat(level)
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            raise TenantError(f"{level} is not the store's own folder")
        os.chmod(level, 0o755)
    return folder.joinpath(*parts)
