"""Writing files without following links others made: folders opened one component at a time,
entries moved or copied between open folders."""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import shutil
import stat
from collections.abc import Iterator
from pathlib import Path

from vpsfleet_agents.backup.sets import CHUNK


class UnsafePath(Exception):
    """A path the restore will not write through: a link others could have made, a folder that
    is not ours, a folder that changed while it was read."""


DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def _ours(st: os.stat_result) -> bool:
    return st.st_uid in (0, os.geteuid())


def others_can_rename_in(st: os.stat_result) -> bool:
    """Someone but root (or us) can add, rename or remove entries of this folder (a sticky
    folder such as /tmp protects the entries root owns)."""
    if not _ours(st):
        return True
    return bool(st.st_mode & 0o022) and not st.st_mode & stat.S_ISVTX


def _lstat(name: str, dir_fd: int) -> os.stat_result | None:
    try:
        return os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        return None


@dataclasses.dataclass
class Folder:
    """An open folder: `path` is its real path; `trusted` says that only root (or we) could have
    arranged the way to it, so a link root made in it may be followed."""

    fd: int
    path: str
    trusted: bool

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def _open_child(parent: Folder, name: str, before: os.stat_result) -> Folder:
    where = os.path.join(parent.path, name)
    try:
        fd = os.open(name, DIR_FLAGS, dir_fd=parent.fd)
    except OSError as err:
        if err.errno in (errno.ELOOP, errno.ENOTDIR):
            raise UnsafePath(f"{where} changed while the restore read it") from err
        raise
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (before.st_dev, before.st_ino):
        os.close(fd)
        raise UnsafePath(f"{where} changed while the restore read it")
    parent_st = os.fstat(parent.fd)
    return Folder(fd, where, parent.trusted and _ours(now) and not others_can_rename_in(parent_st))


def open_folder(path: str) -> Folder:
    """Opens an absolute folder one component at a time from /, never following a link others
    could have made (UnsafePath); a link root made in a folder only root can change is followed
    (a /data that points to another disk). FileNotFoundError or NotADirectoryError when a
    component is missing or not a folder."""
    stack = [Folder(os.open("/", DIR_FLAGS), "/", True)]
    queue = path.split("/")
    links = 0
    try:
        while queue:
            name = queue.pop(0)
            if name in ("", "."):
                continue
            if name == "..":
                if len(stack) > 1:
                    stack.pop().close()
                continue
            top = stack[-1]
            where = os.path.join(top.path, name)
            st = os.stat(name, dir_fd=top.fd, follow_symlinks=False)
            if stat.S_ISLNK(st.st_mode):
                if not (top.trusted and _ours(st) and not others_can_rename_in(os.fstat(top.fd))):
                    raise UnsafePath(f"{where} is a link others could have made: not followed")
                links += 1
                if links > 40:
                    raise UnsafePath(f"{where}: too many links")
                target = os.readlink(name, dir_fd=top.fd)
                if target.startswith("/"):
                    while len(stack) > 1:
                        stack.pop().close()
                queue[:0] = target.split("/")
                continue
            if not stat.S_ISDIR(st.st_mode):
                raise NotADirectoryError(errno.ENOTDIR, "not a folder", where)
            stack.append(_open_child(top, name, st))
        return stack.pop()
    finally:
        for folder in stack:
            folder.close()


def ensure_private_folder(path: str, private: bool = True) -> None:
    """Makes the folder (mode 0700, missing parents too) or checks that the one there is ours:
    a real folder, not a link, owned by root (or us), that nobody else may write to (nor read,
    with `private`), in a parent where nobody else can swap it. UnsafePath otherwise: a
    predictable name in a shared folder (/var/tmp) may have been made by someone else first."""
    path = os.path.normpath(path)
    parent_path, name = os.path.split(path)
    if not name:
        raise UnsafePath(f"{path}: not a folder the agent may own")
    try:
        parent = open_folder(parent_path)
    except FileNotFoundError:
        ensure_private_folder(parent_path, private=False)
        parent = open_folder(parent_path)
    try:
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o700, dir_fd=parent.fd)
        st = os.stat(name, dir_fd=parent.fd, follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            raise UnsafePath(f"{path} is a link, not our folder: remove it")
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePath(f"{path} exists and is not a folder")
        mask = 0o077 if private else 0o022
        if not _ours(st) or st.st_mode & mask:
            raise UnsafePath(
                f"{path} is not ours (owner uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o}):"
                f" expected root and {'0700' if private else 'no write for others'}; remove it"
            )
        if not parent.trusted or others_can_rename_in(os.fstat(parent.fd)):
            raise UnsafePath(f"{parent_path}: others can rename its entries, so {path} could be swapped")
    finally:
        parent.close()


@contextlib.contextmanager
def opened(name: str, flags: int, dir_fd: int, mode: int = 0o777) -> Iterator[int]:
    """`os.open` relative to an open folder, closed on the way out."""
    fd = os.open(name, flags, mode, dir_fd=dir_fd)
    try:
        yield fd
    finally:
        os.close(fd)


def apply_metadata(fd: int, st: os.stat_result) -> None:
    os.fchown(fd, st.st_uid, st.st_gid)
    os.fchmod(fd, stat.S_IMODE(st.st_mode))  # after chown, which clears set-id bits
    os.utime(fd, ns=(st.st_atime_ns, st.st_mtime_ns))


def remove_entry(dir_fd: int, name: str) -> None:
    st = _lstat(name, dir_fd)
    if st is None:
        return
    if stat.S_ISDIR(st.st_mode):
        shutil.rmtree(name, dir_fd=dir_fd)  # fd-based: never follows a link inside
    else:
        os.unlink(name, dir_fd=dir_fd)


def copy_nofollow(src_fd: int, name: str, dst_fd: int, dst_name: str) -> None:
    """Copies an entry and everything below it between two open folders, links as links, owner,
    mode and times kept: for moves between file systems (a rename cannot)."""
    st = os.stat(name, dir_fd=src_fd, follow_symlinks=False)
    mode = st.st_mode
    if stat.S_ISLNK(mode):
        os.symlink(os.readlink(name, dir_fd=src_fd), dst_name, dir_fd=dst_fd)
        os.chown(dst_name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
        os.utime(dst_name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=dst_fd, follow_symlinks=False)
        return
    if stat.S_ISDIR(mode):
        os.mkdir(dst_name, 0o700, dir_fd=dst_fd)
        with opened(name, DIR_FLAGS, src_fd) as inner_src, opened(dst_name, DIR_FLAGS, dst_fd) as inner_dst:
            for child in os.listdir(inner_src):
                copy_nofollow(inner_src, child, inner_dst, child)
            apply_metadata(inner_dst, st)
        return
    if stat.S_ISREG(mode):
        reading = os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC
        creating = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with opened(name, reading, src_fd) as source, opened(dst_name, creating, dst_fd, 0o600) as target:
            while chunk := os.read(source, CHUNK):
                os.write(target, chunk)
            apply_metadata(target, st)
        return
    if stat.S_ISFIFO(mode):
        os.mkfifo(dst_name, 0o600, dir_fd=dst_fd)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        os.mknod(dst_name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=dst_fd)
    else:
        return  # a socket: nothing to keep
    os.chown(dst_name, st.st_uid, st.st_gid, dir_fd=dst_fd, follow_symlinks=False)
    os.chmod(dst_name, stat.S_IMODE(mode), dir_fd=dst_fd)


@dataclasses.dataclass
class Placement:
    """Moves an extracted tree (a private folder, the stage) into place, one entry at a time,
    through open folders: a folder of the set merges into the live folder (files created since
    are kept); anything else replaces the live entry, which is first moved to `replaced` (kept,
    restores in place) or deleted (None: an earlier side copy). A live link where the set has a
    folder is never followed, unless `follow_root_links` (restores in place) and root made it in
    a folder only root can change (it is then where the folder lives, e.g. /data on another
    disk): a link someone else planted is moved aside like any replaced entry. A side copy never
    follows a link. Run first with `dry_run` (nothing changes, UnsafePath for what would be
    refused), then for real."""

    member_dirs: set[str]  # the archive's folders: their owner, mode and times are applied
    replaced: Path | None = None
    dry_run: bool = True
    follow_root_links: bool = False
    displaced: list[str] = dataclasses.field(default_factory=list)

    def merge(self, stage_fd: int, live: Folder, rel: str = "") -> None:
        for name in sorted(os.listdir(stage_fd)):
            child = f"{rel}/{name}" if rel else name
            where = os.path.join(live.path, name)
            staged = os.stat(name, dir_fd=stage_fd, follow_symlinks=False)
            current = _lstat(name, live.fd)
            if stat.S_ISDIR(staged.st_mode) and current is not None:
                inner = self._enter(live, name, current)
                if inner is not None:
                    try:
                        inner_stage = os.open(name, DIR_FLAGS, dir_fd=stage_fd)
                        try:
                            self.merge(inner_stage, inner, child)
                            if not self.dry_run and child in self.member_dirs:
                                apply_metadata(inner.fd, staged)
                        finally:
                            os.close(inner_stage)
                    finally:
                        inner.close()
                    continue
            if current is not None:
                self._displace(live, name, where)
            self._place(stage_fd, name, live)

    def _enter(self, live: Folder, name: str, current: os.stat_result) -> Folder | None:
        """The live folder a folder of the set merges into; None: the live entry goes aside."""
        where = os.path.join(live.path, name)
        if stat.S_ISDIR(current.st_mode):
            return _open_child(live, name, current)
        if (
            self.follow_root_links
            and stat.S_ISLNK(current.st_mode)
            and live.trusted
            and _ours(current)
            and not others_can_rename_in(os.fstat(live.fd))
        ):
            try:
                return open_folder(where)
            except (FileNotFoundError, NotADirectoryError) as err:
                raise UnsafePath(
                    f"{where} is a link of root's to {err.filename}, which is not a folder"
                ) from err
        return None

    def _place(self, stage_fd: int, name: str, live: Folder) -> None:
        if self.dry_run:
            return
        try:
            os.rename(name, name, src_dir_fd=stage_fd, dst_dir_fd=live.fd)
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
            copy_nofollow(stage_fd, name, live.fd, name)

    def _displace(self, live: Folder, name: str, where: str) -> None:
        self.displaced.append(where)
        if self.dry_run:
            return
        if self.replaced is None:
            remove_entry(live.fd, name)
            return
        keep = self.replaced / where.lstrip("/")
        keep.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        try:
            os.rename(name, keep, src_dir_fd=live.fd)
        except OSError as err:
            if err.errno != errno.EXDEV:
                raise
            holder = os.open(keep.parent, DIR_FLAGS)
            try:
                copy_nofollow(live.fd, name, holder, keep.name)
            finally:
                os.close(holder)
            remove_entry(live.fd, name)
