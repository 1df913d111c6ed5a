"""Producing a set's data files: `tar | compressor` and `mariadb-dump | compressor`, every exit code
of every pipeline checked (what `set -o pipefail` does for a shell)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from vpsfleet_agents.backup.config import Config
from vpsfleet_agents.backup.reasons import BackupError
from vpsfleet_agents.backup.sets import CHUNK
from vpsfleet_agents.backup.supervise import Supervisor, tail
from vpsfleet_agents.backup.tools import Tools

SYSTEM_SCHEMAS = frozenset({"information_schema", "performance_schema", "mysql", "sys"})
DUMP_TRAILER = b"-- Dump completed"


@contextlib.contextmanager
def pipeline_files(out: Path, err: Path, logs: Path) -> Iterator[tuple[BinaryIO, BinaryIO, BinaryIO]]:
    """A `producer | compressor > out` pipeline's files: the output, the producer's error log
    (`err`) and the compressor's (`logs`/compress.err)."""
    with (
        open(out, "wb") as sink,
        open(err, "wb") as producer_err,
        open(logs / "compress.err", "wb") as comp_err,
    ):
        yield sink, producer_err, comp_err


def archive_files(config: Config, tools: Tools, sup: Supervisor, out: Path, logs: Path) -> list[str]:
    """`tar | compressor > out`; returns the configured paths that do not exist (a warning).
    tar's exit 1 means a file changed or vanished while read: the archive is not a consistent
    copy, so it is made again, then the run fails."""
    present = [p for p in config.paths if os.path.lexists(p)]
    missing = [p for p in config.paths if p not in present]
    argv = [tools.tar, "--create", "--file=-", "--directory=/", "--sparse"]
    argv += [f"--exclude={p.lstrip('/')}" for p in config.excludes]
    # None there (a guest handed over fresh): an empty archive, the warnings say why; tar
    # itself refuses to archive nothing.
    argv += ["--", *(p.lstrip("/") or "." for p in present)] if present else ["--files-from=/dev/null"]
    for attempt in range(1, config.tar_attempts + 1):
        err = logs / f"tar.{attempt}.err"
        with pipeline_files(out, err, logs) as (sink, tar_err, comp_err):
            tar = sup.spawn(argv, stdout=subprocess.PIPE, stderr=tar_err)
            comp = sup.spawn(tools.compressor, stdin=tar.stdout, stdout=sink, stderr=comp_err)
            assert tar.stdout is not None
            tar.stdout.close()  # the compressor holds the pipe; tar sees EPIPE if it dies
            comp_code = sup.wait(comp)
            tar_code = sup.wait(tar)
        if comp_code != 0:
            raise BackupError(
                "compress_failed", f"compressor exited {comp_code}: {tail(logs / 'compress.err')}"
            )
        if tar_code == 0:
            return missing
        if tar_code != 1:
            raise BackupError("tar_failed", f"tar exited {tar_code}: {tail(err)}")
    raise BackupError(
        "source_changed",
        f"files changed while tar read them, {config.tar_attempts} times: {tail(err)}",
    )


def list_databases(config: Config, tools: Tools, sup: Supervisor, logs: Path) -> list[str]:
    if config.databases == "none":
        return []
    if not config.mysql_defaults_file or not tools.dump:
        raise BackupError("config", "databases to dump but no mysql_defaults_file or dump tool")
    if isinstance(config.databases, tuple):
        return list(config.databases)
    if not tools.mariadb:
        raise BackupError("config", "no mariadb/mysql client to list the databases")
    err = logs / "list.err"
    with open(err, "wb") as err_handle:
        proc = sup.spawn(
            [
                tools.mariadb,
                f"--defaults-extra-file={config.mysql_defaults_file}",
                "--batch",
                "--skip-column-names",
                "--default-character-set=utf8mb4",  # names as they are, whatever the locale
                "--execute=SHOW DATABASES",
            ],
            stdout=subprocess.PIPE,
            stderr=err_handle,
        )
        assert proc.stdout is not None
        output = proc.stdout.read()
        code = sup.wait(proc)
    if code != 0:
        raise BackupError("db_unavailable", f"cannot list databases (exit {code}): {tail(err)}")
    names = [line for line in output.decode("utf-8", errors="replace").split("\n") if line]
    return [n for n in names if n not in SYSTEM_SCHEMAS]


def dump_database(config: Config, tools: Tools, sup: Supervisor, name: str, out: Path, logs: Path) -> None:
    """`dump | compressor > out` with both exit codes and the dump's trailer checked: a dump
    cut short still compresses into a valid file."""
    assert tools.dump is not None
    argv = [
        tools.dump,
        f"--defaults-extra-file={config.mysql_defaults_file}",
        "--single-transaction",
        "--routines",
        "--events",
        "--triggers",
        "--no-tablespaces",
        "--hex-blob",
        "--default-character-set=utf8mb4",
        "--",
        name,
    ]
    dump_err = logs / "dump.err"
    out.parent.mkdir(parents=True, exist_ok=True)
    last = b""
    with pipeline_files(out, dump_err, logs) as (sink, d_err, c_err):
        dump = sup.spawn(argv, stdout=subprocess.PIPE, stderr=d_err)
        comp = sup.spawn(tools.compressor, stdin=subprocess.PIPE, stdout=sink, stderr=c_err)
        assert dump.stdout is not None and comp.stdin is not None
        broken = False
        try:
            while chunk := os.read(dump.stdout.fileno(), CHUNK):
                last = (last + chunk)[-4096:]
                comp.stdin.write(chunk)
        except BrokenPipeError:
            broken = True
            sup.stop(dump)
        finally:
            with contextlib.suppress(BrokenPipeError):
                comp.stdin.close()
            dump.stdout.close()
        dump_code = sup.wait(dump)
        comp_code = sup.wait(comp)
    if comp_code != 0 or broken:
        raise BackupError("compress_failed", f"compressor exited {comp_code} on database {name}")
    if dump_code != 0:
        reason = "db_unavailable" if b"2002" in dump_err.read_bytes() else "dump_failed"
        raise BackupError(reason, f"dump of {name} exited {dump_code}: {tail(dump_err)}")
    lines = last.rstrip().splitlines()
    if not lines or not lines[-1].startswith(DUMP_TRAILER):
        raise BackupError("dump_incomplete", f"dump of {name} lacks its '-- Dump completed' line")
