"""Verification of a guest's newest set, the way the terms ask the customer to (M21): download,
`sha256sum -c`, decompress and list every archive, screen and load every dump."""

from __future__ import annotations

import argparse
import datetime as dt
import os
import re
import shutil
import stat
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from vpsfleet_agents.backup import dump_screen
from vpsfleet_agents.backup.config import Config, StoreConfig, parse_config
from vpsfleet_agents.backup.ftps import Store, lftp_quote
from vpsfleet_agents.backup.produce import DUMP_TRAILER
from vpsfleet_agents.backup.reasons import BackupError
from vpsfleet_agents.backup.restore import decompressor
from vpsfleet_agents.backup.sets import future_sets, published_sets
from vpsfleet_agents.backup.supervise import Supervisor
from vpsfleet_agents.verify.sandbox import Sandbox, Usage, check_private, disk_use, program
from vpsfleet_agents.verify.scratch_mariadb import MIB, scratch_mariadb

SUMS_LINE = re.compile(r"([0-9a-fA-F]{64}) [ *]([^\\\n]+)")  # fullmatch; no escaped names


def shown(text: str | bytes) -> str:
    """A name from the set, printable on one line whatever it holds."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "backslashreplace")
    return text.encode("unicode_escape", "backslashreplace").decode("ascii")[:200]


def screen_dump(sandbox: Sandbox, unpack: list[str], path: Path, name: str,
                timeout: float) -> tuple[str | None, int]:  # fmt: skip
    """Decompresses the dump once (as the sandbox's account) through the agent's screen
    (DumpScreen, the one the agent's restore uses); the reason it is refused, if any, and its
    decompressed size."""
    screen = dump_screen.DumpScreen(name)
    size, tail = 0, b""
    deadline = time.monotonic() + timeout
    with open(path, "rb") as source:
        proc = subprocess.Popen(sandbox.wrap(unpack), stdin=source, stdout=subprocess.PIPE,
                                stderr=subprocess.DEVNULL)  # fmt: skip
        assert proc.stdout is not None
        while chunk := proc.stdout.read(MIB):
            size += len(chunk)
            tail = (tail + chunk)[-4096:]
            screen.feed(chunk)
            if screen.findings or time.monotonic() > deadline:
                proc.kill()
                proc.wait()
                if screen.findings:  # no need to read on
                    return f"{name} refused, nothing of it loaded: {'; '.join(screen.findings)}", size
                return f"{name}: decompressing it took over {timeout:.0f} s (--load-timeout)", size
        code = proc.wait()
    findings = screen.close()
    lines = tail.rstrip().splitlines()
    if code != 0 or not lines or not lines[-1].startswith(DUMP_TRAILER):
        return f"{name} lacks its '-- Dump completed' line (cut short or does not decompress)", size
    if findings:
        return f"{name} refused, nothing of it loaded: {'; '.join(findings)}", size
    return None, size


def load_dump(
    args: argparse.Namespace, sandbox: Sandbox, work: Path, path: Path, name: str,
    database: str, screen: bool = True,
) -> str | None:  # fmt: skip
    """Screens the dump, then loads it into a scratch MariaDB of its own. `screen=False` only for
    the tests that show the sandbox holds without the screen."""
    unpack = decompressor(agent_config(args), name)
    size = path.stat().st_size
    if screen:
        refused, size = screen_dump(sandbox, unpack, path, name, args.load_timeout)
        if refused:
            return refused
    scratch = Path(args.scratch_dir)
    usage = shutil.disk_usage(scratch)
    allowed = args.scratch_factor * size + 256 * MIB
    if usage.free - usage.total // 20 < allowed + 256 * MIB:
        return f"{name}: not enough room in {scratch} to load it ({size // MIB} MiB of SQL)"
    with scratch_mariadb(scratch, sandbox, work) as db:
        failed = db.load(path, unpack, database, disk_use(db.base) + allowed, args.load_timeout)
    return f"{name} does not load into a scratch MariaDB: {failed}" if failed else None


def local_files(root: Path) -> tuple[list[str], list[str]]:
    """Regular files under `root` (relative names), and whatever else is there (never followed)."""
    files, odd = [], []
    for folder, dirs, names in os.walk(root):
        for name in [*dirs, *names]:
            path = Path(folder, name)
            mode = os.lstat(path).st_mode
            if stat.S_ISREG(mode):
                files.append(str(path.relative_to(root)))
            elif not stat.S_ISDIR(mode):
                odd.append(shown(str(path.relative_to(root))))
    return sorted(files), odd


def newest_set(names: list[str], today: dt.date) -> tuple[str | None, list[str]]:
    """The newest well-formed set not dated after tomorrow, and the future-dated ones (never
    taken for the newest: a guest whose clock ran ahead must not hide its real sets)."""
    future = future_sets(names, today)
    good = [n for n in published_sets(names) if n not in future]
    return (good[-1] if good else None), future


def verify(args: argparse.Namespace, password: str) -> dict[str, Any]:
    result: dict[str, Any] = {
        "guest": args.guest,
        "customer": args.customer,
        "store": args.host,
        "set": None,
        "ok": False,
        "reasons": [],
        "checked": [],
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    reasons: list[str] = result["reasons"]
    work = Path(args.work_dir)
    private: Path | None = None
    try:
        sandbox = Sandbox(args.run_as, args.network_namespace)
        result["sandbox"] = sandbox.describe()
        check_private(work)
        check_private(Path(args.scratch_dir), group=sandbox.gid)
        private = Path(tempfile.mkdtemp(prefix="verify.", dir=work))
        secret = private / "password"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(password)
        store = Store(
            StoreConfig(
                host=args.host, port=args.port, user=args.customer, password_file=str(secret),
                ca_file=args.ca_file, directory=args.guest, timeout_seconds=args.timeout,
            ),
            shutil.which("lftp") or "lftp", Supervisor(None), private,
        )  # fmt: skip
        try:
            names = [p.split("/")[-1] for p in store.listing()]
        except BackupError as err:
            reasons.append(f"{err.reason}: {err.message}")
            return result
        newest, future = newest_set(names, dt.date.today())
        if future:
            result["future_sets"] = future
        if newest is None:
            result["no_set"] = True
            reasons.append(f"no published set for {args.guest} on the store")
            return result
        result["set"] = newest
        local = private / "set"
        try:
            quoted = f"{lftp_quote(newest)} {lftp_quote(str(local))}"
            store.run([f"mirror --parallel=1 --no-symlinks {quoted}"])
        except BackupError as err:
            reasons.append(f"download {err.reason}: {err.message}")
            return result
        on_disk, odd = local_files(local)
        if odd:
            reasons.append(f"not regular files (never read): {', '.join(odd)}")
        # 1. sha256sum -c, exactly what the customer runs, on names inside the set only.
        listed = []
        sums = local / "SHA256SUMS"
        text = sums.read_text(encoding="utf-8", errors="replace") if "SHA256SUMS" in on_disk else ""
        bad = []
        for line in text.splitlines():
            match = SUMS_LINE.fullmatch(line)
            parts = Path(match[2]).parts if match else ()
            if not match or not parts or match[2].startswith("/") or ".." in parts or match[2] not in on_disk:
                bad.append(shown(line))
            else:
                listed.append(match[2])
        if not text:
            reasons.append("SHA256SUMS is missing or empty")
        elif bad:
            reasons.append(f"SHA256SUMS lines that are not a file of the set: {'; '.join(bad[:5])}")
        else:
            check = subprocess.run(["sha256sum", "--check", "--strict", "SHA256SUMS"], cwd=local,
                                   capture_output=True, text=True, check=False)  # fmt: skip
            if check.returncode != 0:
                wrong = [line for line in check.stdout.splitlines() if not line.endswith(": OK")]
                reasons.append("sha256sum -c: " + "; ".join(wrong or [check.stderr.strip()]))
        unlisted = [f for f in on_disk if f not in listed and f != "SHA256SUMS"]
        if unlisted:
            reasons.append(f"files not in SHA256SUMS: {', '.join(shown(f) for f in unlisted)}")
        # 2. Every archive decompresses and lists; 3. every dump is screened, complete and loads.
        archives = [f for f in on_disk if f.startswith("www.tar")]
        dumps = [f for f in on_disk if f.startswith("db/")]
        for name in archives:
            failed = list_archive(args, sandbox, local / name, name, private)
            result["checked"].append({"file": name, "ok": failed is None})
            if failed:
                reasons.append(f"{name} does not decompress and list: {failed}")
        for index, name in enumerate(dumps):
            reason = load_dump(args, sandbox, private, local / name, name, f"verify_{index}")
            result["checked"].append({"file": name, "ok": reason is None})
            if reason:
                reasons.append(reason)
        result["ok"] = not reasons
        return result
    except Usage as err:
        reasons.append(f"refused: {err}")
        return result
    except Exception as err:  # a bug must still say FAIL and why
        reasons.append(f"{type(err).__name__}: {err}")
        return result
    finally:
        if private is not None:
            shutil.rmtree(private, ignore_errors=True)
        result["finished"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")


def list_archive(args: argparse.Namespace, sandbox: Sandbox, path: Path, name: str,
                 work: Path) -> str | None:  # fmt: skip
    """`unpack < archive | tar --list`, both as the sandbox's account, both exit codes checked."""
    unpack = decompressor(agent_config(args), name)
    errors = [work / "unpack.err", work / "tar.err"]
    with open(path, "rb") as source, open(errors[0], "wb") as err_one, open(errors[1], "wb") as err_two:
        one = subprocess.Popen(sandbox.wrap(unpack), stdin=source, stdout=subprocess.PIPE, stderr=err_one)
        assert one.stdout is not None
        two = subprocess.Popen(sandbox.wrap([program("tar"), "--list", "--file=-"]), stdin=one.stdout,
                               stdout=subprocess.DEVNULL, stderr=err_two)  # fmt: skip
        one.stdout.close()
        code_two, code_one = two.wait(), one.wait()
    if code_one == 0 and code_two == 0:
        return None
    text = " | ".join(p.read_text(errors="replace").strip() for p in errors if p.stat().st_size)
    return f"exit {code_one}/{code_two}: {text[-300:]}"


def agent_config(args: argparse.Namespace) -> Config:
    return parse_config(
        {"customer": args.customer, "guest": args.guest,
         "store": {"host": args.host, "user": args.customer, "password_file": "-", "ca_file": args.ca_file}}
    )  # fmt: skip
