"""Restore: a set (or part of it) back onto the guest or beside it, checked whole before anything
is changed."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vpsfleet_agents.backup.config import Config
from vpsfleet_agents.backup.database_names import (
    database_name_with,
    quote_identifier,
    quote_string,
    side_database_name,
)
from vpsfleet_agents.backup.dump_screen import DumpScreen
from vpsfleet_agents.backup.ftps import Store, lftp_quote
from vpsfleet_agents.backup.produce import DUMP_TRAILER
from vpsfleet_agents.backup.reasons import BackupError
from vpsfleet_agents.backup.restore_outcome import (
    RESTORE_REASONS,
    RestoreError,
    RestoreOutcome,
    RestoreRequest,
    kept_text,
)
from vpsfleet_agents.backup.safe_fs import (
    DIR_FLAGS,
    Placement,
    UnsafePath,
    ensure_private_folder,
    open_folder,
    others_can_rename_in,
)
from vpsfleet_agents.backup.sets import (
    CHUNK,
    SET_FILE,
    future_sets,
    parse_sha256sums,
    published_sets,
    set_date,
    sha256_file,
)
from vpsfleet_agents.backup.supervise import Killed, Supervisor, exclusive_lock, signals_raise, tail
from vpsfleet_agents.backup.tools import Tools


def decompressor(config: Config, name: str) -> list[str]:
    """The command that decompresses a set file to stdout, chosen by its extension: the set may
    have been made with another compression than the one configured today."""

    def which(tool: str) -> str | None:
        return config.tools.get(tool) or shutil.which(tool)

    if name.endswith(".zst"):
        program = which("zstd")
    elif name.endswith(".gz"):
        program = which("pigz") or which("gzip")
    else:
        raise RestoreError("corrupt", f"{name}: unknown compression")
    if not program:
        raise RestoreError("config", f"no decompressor for {name}")
    return [program, "-dc"]


def tar_unescape(text: bytes) -> str:
    """A member name as GNU tar lists it in the C locale with `--quoting-style=escape`
    (`\\n`, `\\\\`, octal `\\303\\251` for every byte it does not print)."""
    simple = {b"n": b"\n", b"t": b"\t", b"r": b"\r", b"f": b"\f", b"v": b"\v", b"a": b"\a", b"b": b"\b"}

    def one(match: re.Match[bytes]) -> bytes:
        code = match[1]
        if len(code) == 3:
            return bytes([int(code, 8) & 0xFF])
        return simple.get(code, code)

    return os.fsdecode(re.sub(rb"\\([0-7]{3}|.)", one, text, flags=re.DOTALL))


@dataclasses.dataclass
class FilesPlan:
    """Files extracted into the stage and checked against the live tree, not yet in place."""

    archive: str
    destination: str
    stage: Path
    member_dirs: set[str]


class Restorer:
    """One restore: choose the set, download what is needed, check all of it, then apply."""

    def __init__(self, config: Config, request: RestoreRequest, sup: Supervisor, private: Path) -> None:
        self.tools = Tools.find(config)
        self.store = Store(config.store, self.tools.lftp, sup, private)
        self.config = config
        self.request = request
        self.sup = sup
        self.private = private
        self.local = private / "set"
        self.logs = private / "logs"
        self.local.mkdir()
        self.logs.mkdir()
        self.restore_root = request.restore_root or config.restore_dir
        self.stamp = (request.now or dt.datetime.now()).strftime("%Y%m%d%H%M")

    # -- processes --

    def capture(self, argv: Sequence[str], stdin: bytes | None = None) -> tuple[int, bytes, str]:
        err_path = self.logs / "cmd.err"
        with open(err_path, "wb") as err:
            proc = self.sup.spawn(
                argv,
                stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=err,
            )
            out, _ = proc.communicate(stdin)
            code = self.sup.wait(proc)
        return code, out, tail(err_path)

    def pipe(self, first: Sequence[str], second: Sequence[str], out: Path | None = None) -> str | None:
        """`first | second`, second's output into `out` (or discarded); None when both exit 0
        (like pipefail), else what went wrong."""
        sink = open(out, "wb") if out is not None else open(os.devnull, "wb")  # noqa: SIM115
        with sink, open(self.logs / "first.err", "wb") as e1, open(self.logs / "second.err", "wb") as e2:
            one = self.sup.spawn(first, stdout=subprocess.PIPE, stderr=e1)
            two = self.sup.spawn(second, stdin=one.stdout, stdout=sink, stderr=e2)
            assert one.stdout is not None
            one.stdout.close()
            code_two = self.sup.wait(two)
            code_one = self.sup.wait(one)
        if code_one == 0 and code_two == 0:
            return None
        errors = [tail(self.logs / "first.err"), tail(self.logs / "second.err")]
        return f"exit {code_one}/{code_two}: " + " | ".join(e for e in errors if e)

    def store_run(self, commands: Sequence[str]) -> str:
        try:
            return self.store.run(commands)
        except BackupError as err:
            reason = {"upload_failed": "download_failed", "quota": "download_failed"}.get(
                err.reason, err.reason
            )
            raise RestoreError(reason, err.message) from err

    # -- steps --

    def choose_set(self) -> str:
        names = [
            p.split("/")[-1] for p in Store.parse_listing(self.store_run(["cls -1 --size --block-size=1 ./"]))
        ]
        # A set dated after tomorrow (a clock ran ahead, or planted) is never the newest.
        ahead = future_sets(names, (self.request.now or dt.datetime.now()).date())
        sets = [n for n in published_sets(names) if n not in ahead]
        wanted = self.request.set_name
        if wanted == "latest":
            if not sets:
                more = (
                    f" (sets dated in the future, never taken as the newest: {', '.join(ahead)})"
                    if ahead
                    else ""
                )
                raise RestoreError("no_set", f"no published set on the store{more}")
            return sets[-1]
        if set_date(wanted) is None:
            raise RestoreError("config", f"set: expected YYYY-MM-DD or latest, got {wanted!r}")
        if wanted not in sets and wanted not in ahead:
            available = ", ".join(sets) or "none"
            raise RestoreError("no_set", f"no set {wanted} on the store (published sets: {available})")
        return wanted

    def download(self, set_name: str, files: Sequence[str]) -> None:
        commands = []
        for name in files:
            (self.local / name).parent.mkdir(parents=True, exist_ok=True)
            commands.append(f"get {lftp_quote(f'{set_name}/{name}')} -o {lftp_quote(str(self.local / name))}")
        self.store_run(commands)

    def verify_sums(self, files: Sequence[str], sums: dict[str, str]) -> None:
        for name in files:
            if name not in sums:
                raise RestoreError("corrupt", f"{name} is not listed in SHA256SUMS")
            if sha256_file(self.local / name) != sums[name]:
                raise RestoreError("corrupt", f"{name}: SHA-256 differs from SHA256SUMS (the set is damaged)")

    def archive_members(self, name: str) -> dict[str, bool]:
        """Tests the archive end to end (decompressor and tar both read all of it); returns its
        members, True for folders."""
        listing = self.logs / "members"
        unpack = [*decompressor(self.config, name), str(self.local / name)]
        failed = self.pipe(unpack, [self.tools.tar, "--list", "--quoting-style=escape", "--file=-"], listing)
        if failed:
            raise RestoreError("corrupt", f"{name} does not decompress and list: {failed}")
        members: dict[str, bool] = {}
        for line in listing.read_bytes().split(b"\n"):
            if not line:
                continue
            member = tar_unescape(line)
            folder = member.endswith("/")
            member = member.rstrip("/")
            while member.startswith("./"):
                member = member[2:]
            if member and member != ".":
                members[member] = folder
        return members

    def check_dump(self, name: str) -> None:
        """Decompresses the whole dump, checks its `-- Dump completed` trailer, and screens it
        for what the client would run itself instead of loading (DumpScreen)."""
        screen = DumpScreen(name)
        with open(self.logs / "first.err", "wb") as err:
            proc = self.sup.spawn(
                [*decompressor(self.config, name), str(self.local / name)], stdout=subprocess.PIPE, stderr=err
            )
            assert proc.stdout is not None
            last = b""
            while chunk := os.read(proc.stdout.fileno(), CHUNK):
                last = (last + chunk)[-4096:]
                screen.feed(chunk)
            proc.stdout.close()
            code = self.sup.wait(proc)
        if code != 0:
            raise RestoreError("corrupt", f"{name} does not decompress: {tail(self.logs / 'first.err')}")
        lines = last.rstrip().splitlines()
        if not lines or not lines[-1].startswith(DUMP_TRAILER):
            raise RestoreError("corrupt", f"{name} lacks its '-- Dump completed' line: the dump is cut short")
        findings = screen.close()
        if findings:
            raise RestoreError(
                "unsafe_dump",
                f"{name} holds what the mariadb client would run itself ({'; '.join(findings)}):"
                " refused, nothing was changed (a dump is data, never commands)",
            )

    def mysql(self) -> list[str]:
        """The client that loads dumps: --sandbox refuses every command that reaches the file
        system or a shell, --binary-mode reads no client command at all but DELIMITER."""
        if not self.tools.mariadb:
            raise RestoreError("config", "no mariadb/mysql client to load the dumps")
        argv = [self.tools.mariadb]
        if self.request.mysql_defaults_file:
            argv.append(f"--defaults-extra-file={self.request.mysql_defaults_file}")
        return [
            *argv, "--batch", "--skip-column-names", "--default-character-set=utf8mb4",
            "--sandbox", "--binary-mode",
        ]  # fmt: skip

    def sql(self, statement: str) -> str:
        code, out, err = self.capture([*self.mysql(), f"--execute={statement}"])
        if code != 0:
            raise RestoreError("apply_failed", f"{statement[:60]}: exit {code}: {err}")
        return out.decode("utf-8", errors="replace")

    def exists(self, database: str) -> bool:
        out = self.sql(
            f"SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = {quote_string(database)}"
        )
        return out.strip() != "0"

    def create(self, database: str, charset: tuple[str, str] | None) -> None:
        create = f"CREATE DATABASE {quote_identifier(database)}"
        if charset:
            create += f" CHARACTER SET {charset[0]} COLLATE {charset[1]}"
        self.sql(f"DROP DATABASE IF EXISTS {quote_identifier(database)}; {create}")

    def load(self, dump: str, database: str, charset: tuple[str, str] | None) -> None:
        """Drops and creates `database`, then loads `dump` into it."""
        self.create(database, charset)
        failed = self.pipe(
            [*decompressor(self.config, dump), str(self.local / dump)], [*self.mysql(), database]
        )
        if failed:
            raise RestoreError("apply_failed", f"loading {dump} into {database}: {failed}")

    def disable_events(self, database: str) -> None:
        """A copy's events would run their statements on the copy (or, qualified, on the live
        database): side and safety copies keep them, disabled."""
        out = self.sql(
            "SELECT HEX(EVENT_NAME) FROM information_schema.EVENTS"
            f" WHERE EVENT_SCHEMA = {quote_string(database)} AND STATUS = 'ENABLED'"
        )
        for line in out.split():
            event = bytes.fromhex(line).decode("utf-8", errors="replace")
            self.sql(f"ALTER EVENT {quote_identifier(database)}.{quote_identifier(event)} DISABLE")

    def free_name(self, database: str, suffix: str) -> str:
        for attempt in range(1, 100):
            name = database_name_with(database, suffix + (f"_{attempt}" if attempt > 1 else ""))
            if not self.exists(name):
                return name
        raise RestoreError("apply_failed", f"no free name for a copy of {database}")

    def keep_live(self, database: str) -> str | None:
        """Copies the live database to `<name>_before_restore_<YYYYmmddHHMM>` before it is
        replaced (dump and reload: MariaDB cannot rename a database, and RENAME TABLE cannot
        move views or tables with triggers). None when there is no live database."""
        if not self.exists(database):
            return None
        if not self.tools.dump:
            raise RestoreError("config", "no mariadb-dump/mysqldump to keep the live database")
        keep = self.free_name(database, f"_before_restore_{self.stamp}")
        self.create(keep, self.charset_of(database))
        defaults = (
            [f"--defaults-extra-file={self.request.mysql_defaults_file}"]
            if self.request.mysql_defaults_file
            else []
        )
        dump = [
            self.tools.dump, *defaults, "--single-transaction", "--routines", "--events", "--triggers",
            "--no-tablespaces", "--hex-blob", "--default-character-set=utf8mb4", "--", database,
        ]  # fmt: skip
        screen = DumpScreen(f"the live database {database}")
        last = b""
        with open(self.logs / "first.err", "wb") as e1, open(self.logs / "second.err", "wb") as e2:
            source = self.sup.spawn(dump, stdout=subprocess.PIPE, stderr=e1)
            loader = self.sup.spawn(
                [*self.mysql(), keep], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=e2
            )
            assert source.stdout is not None and loader.stdin is not None
            broken = False
            try:
                while chunk := os.read(source.stdout.fileno(), CHUNK):
                    last = (last + chunk)[-4096:]
                    screen.feed(chunk)
                    if screen.findings:
                        break
                    loader.stdin.write(chunk)
            except BrokenPipeError:
                broken = True
            finally:
                if screen.findings or broken:
                    self.sup.stop(source)
                    self.sup.stop(loader)
                with contextlib.suppress(BrokenPipeError):
                    loader.stdin.close()
                source.stdout.close()
            code_loader = self.sup.wait(loader)
            code_source = self.sup.wait(source)
        findings = screen.findings or screen.close()
        trailer = last.rstrip().splitlines()[-1:] or [b""]
        problem = None
        if findings:
            problem = f"its dump holds what the client would run itself ({'; '.join(findings)})"
        elif code_source != 0 or code_loader != 0 or broken or not trailer[0].startswith(DUMP_TRAILER):
            errors = [tail(self.logs / "first.err"), tail(self.logs / "second.err")]
            problem = f"exit {code_source}/{code_loader}: " + " | ".join(e for e in errors if e)
        if problem:
            with contextlib.suppress(RestoreError):
                self.sql(f"DROP DATABASE IF EXISTS {quote_identifier(keep)}")
            raise RestoreError(
                "unsafe_dump" if findings else "apply_failed",
                f"keeping the live database {database} as {keep} failed, {problem}: nothing was replaced",
            )
        self.disable_events(keep)
        return keep

    def charset_of(self, database: str) -> tuple[str, str] | None:
        out = self.sql(
            "SELECT DEFAULT_CHARACTER_SET_NAME, DEFAULT_COLLATION_NAME FROM information_schema.SCHEMATA"
            f" WHERE SCHEMA_NAME = {quote_string(database)}"
        ).split()
        return (out[0], out[1]) if len(out) == 2 else None

    # -- files --

    def replaced_folder(self) -> Path:
        """Where a restore in place keeps what it replaces: <replaced_dir>/<YYYYmmddHHMM>/."""
        ensure_private_folder(self.config.replaced_dir)
        root = Path(self.config.replaced_dir)
        for attempt in range(1, 100):
            folder = root / (self.stamp + (f"_{attempt}" if attempt > 1 else ""))
            if not os.path.lexists(folder):
                return folder
        raise RestoreError("apply_failed", f"no free folder in {root}")

    def stage_parent(self, destination: str, first: str) -> str:
        """A private folder on the destination's file system, so that entries move into place
        by rename: inside the target for a side copy; for a restore in place, the restore
        folder when it is on the file system of the deepest existing folder of the first path,
        else the shallowest folder of that file system on the way that only root can change
        (/data on a disk of its own); failing that, the restore folder (entries are copied)."""
        if not self.request.in_place:
            return destination
        ensure_private_folder(self.restore_root)
        parts = [p for p in first.split("/") if p]
        prefixes = ["/" + "/".join(parts[:depth]) for depth in range(len(parts) + 1)]
        device = None
        for prefix in reversed(prefixes):
            try:
                folder = open_folder(prefix)
            except (OSError, UnsafePath):
                continue
            device = os.fstat(folder.fd).st_dev
            folder.close()
            break
        if device is None or os.stat(self.restore_root).st_dev == device:
            return self.restore_root
        for prefix in prefixes:
            try:
                folder = open_folder(prefix)
            except (OSError, UnsafePath):
                break
            try:
                st = os.fstat(folder.fd)
                if st.st_dev == device and folder.trusted and not others_can_rename_in(st):
                    return folder.path
            finally:
                folder.close()
        return self.restore_root

    def prepare_files(
        self, archive: str, members: list[str], present: dict[str, bool], set_name: str
    ) -> FilesPlan:
        """Extracts the requested members into a fresh private folder and checks, changing
        nothing live, that they can go into place (UnsafePath: refused)."""
        if self.request.in_place:
            destination = "/"
            ensure_private_folder(self.config.replaced_dir)
        else:
            if self.request.target is None:
                ensure_private_folder(self.restore_root)
            destination = os.path.normpath(self.request.target or os.path.join(self.restore_root, set_name))
            if not destination.startswith("/"):
                raise RestoreError("config", f"target {destination}: expected an absolute path")
            ensure_private_folder(destination, private=False)
        wanted = [m for m in present if not members or any(m == r or m.startswith(r + "/") for r in members)]
        member_dirs = {m for m in wanted if present[m]}
        stage = Path(
            tempfile.mkdtemp(prefix=".vpsfleet-restore.", dir=self.stage_parent(destination, wanted[0]))
        )
        argv = [self.tools.tar, "--extract", "--file=-", f"--directory={stage}", "--", *members]
        failed = self.pipe([*decompressor(self.config, archive), str(self.local / archive)], argv)
        if failed:
            shutil.rmtree(stage, ignore_errors=True)
            raise RestoreError("apply_failed", f"extracting {archive}: {failed}")
        plan = FilesPlan(archive, destination, stage, member_dirs)
        self.place(plan, None, dry_run=True)
        return plan

    def place(self, plan: FilesPlan, replaced: Path | None, dry_run: bool = False) -> Placement:
        """Moves the stage into place (with `dry_run`, only checks it could)."""
        placement = Placement(plan.member_dirs, replaced, dry_run, follow_root_links=self.request.in_place)
        stage = os.open(plan.stage, DIR_FLAGS)
        try:
            live = open_folder(plan.destination)
            try:
                placement.merge(stage, live)
            finally:
                live.close()
        finally:
            os.close(stage)
        return placement

    def run(self) -> RestoreOutcome:
        request = self.request
        set_name = self.choose_set()
        # 1. Download the set's index and check it against its own SHA256SUMS.
        self.download(set_name, ["SHA256SUMS", "MANIFEST.json"])
        try:
            sums = parse_sha256sums((self.local / "SHA256SUMS").read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise RestoreError("corrupt", f"SHA256SUMS is unreadable: {err}") from err
        self.verify_sums(["MANIFEST.json"], sums)
        try:
            manifest = json.loads((self.local / "MANIFEST.json").read_text(encoding="utf-8"))
            entries = [e for e in manifest["files"] if isinstance(e, dict)]
        except (ValueError, KeyError, TypeError) as err:
            raise RestoreError("corrupt", f"MANIFEST.json is unreadable: {err}") from err
        for entry in entries:
            if not re.fullmatch(SET_FILE, str(entry.get("path", ""))):
                raise RestoreError(
                    "corrupt", f"MANIFEST.json names a file {entry.get('path')!r} a set never holds"
                )
        # 2. What the request needs from this set.
        archive = next((e["path"] for e in entries if e.get("kind") == "files"), None)
        dumps = {str(e["source"]): str(e["path"]) for e in entries if e.get("kind") == "database"}
        needed: list[str] = []
        if request.files is not None:
            if archive is None:
                raise RestoreError("not_in_set", f"set {set_name} holds no files archive")
            needed.append(archive)
        wanted_dbs: list[str] = []
        if request.databases is not None:
            wanted_dbs = list(request.databases) or sorted(dumps)
            missing = [d for d in wanted_dbs if d not in dumps]
            if missing:
                raise RestoreError(
                    "not_in_set",
                    f"set {set_name} has no dump of {', '.join(missing)}"
                    f" (it has: {', '.join(sorted(dumps)) or 'none'})",
                )
            needed += [dumps[d] for d in wanted_dbs]
        if not needed:
            raise RestoreError("not_in_set", f"set {set_name} holds nothing the request asks for")
        # 3. Download and check everything before anything is changed.
        self.download(set_name, needed)
        self.verify_sums(needed, sums)
        members: list[str] = []
        present: dict[str, bool] = {}
        if archive is not None and request.files is not None:
            present = self.archive_members(archive)
            for path in request.files:
                member = path.rstrip("/").lstrip("/")
                if not any(m == member or m.startswith(member + "/") for m in present):
                    raise RestoreError("not_in_set", f"{path} is not in {archive} of set {set_name}")
                members.append(member)
            if not present:
                raise RestoreError("not_in_set", f"{archive} of set {set_name} is empty")
        for database in wanted_dbs:
            self.check_dump(dumps[database])
        if wanted_dbs:
            code, _, errors = self.capture([*self.mysql(), "--execute=SELECT 1"])
            if code != 0:
                if "unknown option" in errors.lower() or "unknown variable" in errors.lower():
                    raise RestoreError(
                        "config",
                        f"the client {self.tools.mariadb} lacks --sandbox or --binary-mode"
                        f" (MariaDB 10.5.25, 10.6.18, 10.11.8 or later): {errors}",
                    )
                raise RestoreError("db_unavailable", f"cannot reach the database server: {errors}")
        outcome = RestoreOutcome("ok", "", set_name)
        try:
            self.apply(outcome, set_name, archive, members, present, dumps, wanted_dbs)
        except RestoreError as err:
            kept = kept_text(outcome.replaced)
            if kept:
                raise RestoreError(err.reason, f"{err.message}; kept: {kept}", outcome.replaced) from err
            raise
        parts = []
        if outcome.files:
            parts.append(f"files into {outcome.files['target']}")
        parts += [f"database {d} into {t}" for d, t in outcome.databases.items()]
        outcome.message = f"set {set_name} restored: {', '.join(parts)}"
        kept = kept_text(outcome.replaced)
        if kept:
            outcome.message += f"; kept: {kept} (remove them once the restore is confirmed)"
        return outcome

    def apply(
        self,
        outcome: RestoreOutcome,
        set_name: str,
        archive: str | None,
        members: list[str],
        present: dict[str, bool],
        dumps: dict[str, str],
        wanted_dbs: list[str],
    ) -> None:
        """Everything that writes, once the set has passed every check."""
        request = self.request
        plan: FilesPlan | None = None
        try:
            # 4. Files into a private folder, checked against the live tree: a link planted
            #    where the set has a folder is never followed; a refusal changes nothing.
            if archive is not None and request.files is not None:
                try:
                    plan = self.prepare_files(archive, members, present, set_name)
                except UnsafePath as err:
                    raise RestoreError("unsafe_target", f"{err}: refused, nothing was changed") from err
            # 5. Databases first into their side names: a dump that does not load stops the
            #    restore before any live database or file is touched.
            for database in wanted_dbs:
                side = side_database_name(database, set_name)
                self.load(dumps[database], side, self.charset_of(database))
                self.disable_events(side)
                outcome.databases[database] = side
            # 6. In place: the live databases are kept under a dated name first.
            if request.in_place:
                for database in wanted_dbs:
                    keep = self.keep_live(database)
                    if keep:
                        outcome.replaced["databases"][database] = keep
            # 7. Files: moved into place; what they replace is kept (in place).
            if plan is not None:
                replaced = self.replaced_folder() if request.in_place else None
                try:
                    placement = self.place(plan, replaced)
                except (UnsafePath, OSError) as err:
                    if replaced is not None and replaced.exists():
                        outcome.replaced["files"] = str(replaced)
                    raise RestoreError(
                        "apply_failed", f"moving the files into {plan.destination}: {err}"
                    ) from err
                if placement.displaced and replaced is not None:
                    outcome.replaced["files"] = str(replaced)
                outcome.files = {
                    "target": plan.destination,
                    "paths": list(request.files) if request.files else "all",
                }
        finally:
            if plan is not None:
                shutil.rmtree(plan.stage, ignore_errors=True)
        # 8. Live databases, each from a dump that has just loaded cleanly.
        if request.in_place:
            for database in wanted_dbs:
                side = outcome.databases[database]
                try:
                    self.load(dumps[database], database, self.charset_of(database))
                except RestoreError as err:
                    kept = outcome.replaced["databases"].get(database)
                    raise RestoreError(
                        "apply_failed",
                        f"{err.message}; database {database} is incomplete, the checked copy is in {side}"
                        + (f", what was live is in {kept}" if kept else ""),
                    ) from err
                self.sql(f"DROP DATABASE IF EXISTS {quote_identifier(side)}")
                outcome.databases[database] = database


def restore(config: Config, request: RestoreRequest) -> RestoreOutcome:
    """One restore; never raises for a failure of the restore itself (see the outcome). Holds
    the backup's lock: a restore in place and a nightly run never overlap."""
    with exclusive_lock(config.lock_file) as locked:
        if not locked:
            return RestoreOutcome("locked", f"a backup or restore holds {config.lock_file}")
        sup = Supervisor(None)
        try:
            ensure_private_folder(config.work_dir)
            private = Path(tempfile.mkdtemp(prefix="restore.", dir=config.work_dir))
        except UnsafePath as err:
            return RestoreOutcome("unsafe_target", f"work folder {config.work_dir}: {err}: refused")
        except OSError as err:
            return RestoreOutcome("config", f"work folder {config.work_dir}: {err}")
        try:
            with signals_raise():
                return Restorer(config, request, sup, private).run()
        except RestoreError as err:
            failed = RestoreOutcome(err.reason, err.message)
            if err.replaced:
                failed.replaced = err.replaced
            return failed
        except UnsafePath as err:
            return RestoreOutcome("unsafe_target", f"{err}: refused")
        except BackupError as err:
            return RestoreOutcome(err.reason if err.reason in RESTORE_REASONS else "error", err.message)
        except Killed as err:
            return RestoreOutcome("killed", f"stopped by {err}")
        except Exception as err:  # a bug still ends with a reason and an exit code
            return RestoreOutcome("error", f"{type(err).__name__}: {err}")
        finally:
            sup.close()
            shutil.rmtree(private, ignore_errors=True)
