"""One nightly run: produce the set, publish it atomically on the store, apply retention."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from vpsfleet_agents.backup.config import Config, RetryConfig
from vpsfleet_agents.backup.ftps import Store, lftp_quote, section
from vpsfleet_agents.backup.manifest import build_manifest
from vpsfleet_agents.backup.produce import archive_files, dump_database, list_databases
from vpsfleet_agents.backup.reasons import (
    EXIT_CONFIG,
    EXIT_FAILED,
    EXIT_LOCKED,
    EXIT_OK,
    BackupError,
    StoreBusy,
)
from vpsfleet_agents.backup.safe_fs import UnsafePath, ensure_private_folder
from vpsfleet_agents.backup.sets import (
    database_file_name,
    format_sha256sums,
    future_sets,
    orphaned_superseded,
    published_sets,
    select_expired,
    set_date,
    sha256_file,
    stale_folders,
)
from vpsfleet_agents.backup.status import read_status, record
from vpsfleet_agents.backup.supervise import Killed, Supervisor, deadline_after, exclusive_lock, signals_raise
from vpsfleet_agents.backup.tools import Tools


@dataclasses.dataclass
class Outcome:
    reason: str
    message: str
    set_name: str | None = None
    bytes: int = 0
    published: bool = False  # the set is on the store (also with reason future_sets)

    @property
    def exit_code(self) -> int:
        if self.reason == "ok":
            return EXIT_OK
        if self.reason == "locked":
            return EXIT_LOCKED
        if self.reason == "config":
            return EXIT_CONFIG
        return EXIT_FAILED


def produce(
    config: Config, tools: Tools, sup: Supervisor, staging: Path, logs: Path
) -> tuple[list[dict[str, Any]], list[str]]:
    """Builds the set's data files in `staging`; returns manifest entries and warnings."""
    entries: list[dict[str, Any]] = []
    warnings: list[str] = []
    if config.paths:
        began = time.monotonic()
        name = f"www.tar{tools.extension}"
        missing = archive_files(config, tools, sup, staging / name, logs)
        warnings += [f"path {p} does not exist: not in the archive" for p in missing]
        entries.append(
            {
                "path": name,
                "kind": "files",
                "source": [p for p in config.paths if p not in missing],
                "seconds": round(time.monotonic() - began, 3),
            }
        )
    for database in list_databases(config, tools, sup, logs):
        began = time.monotonic()
        name = database_file_name(database, tools.extension)
        dump_database(config, tools, sup, database, staging / name, logs)
        entries.append(
            {
                "path": name,
                "kind": "database",
                "source": database,
                "seconds": round(time.monotonic() - began, 3),
            }
        )
    for entry in entries:
        path = staging / entry["path"]
        entry["bytes"] = path.stat().st_size
        entry["sha256"] = sha256_file(path)
    return entries, warnings


def publish(
    store: Store,
    staging: Path,
    night: str,
    data_files: Sequence[str],
    expected: dict[str, str],
    retention_days: int | None,
    today: dt.date,
    minimum_sets: int = 3,
) -> dict[str, Any]:
    """The publish protocol, in three TLS sessions: (1) list the folder; (2) clean leftovers,
    upload the data files to `<night>.partial/`, then MANIFEST.json and SHA256SUMS last, and
    list the sizes and the server's hashes; (3) once the client has compared them with what it
    sent, rename the folder to `<night>` and apply retention. Returns what it did, with the
    sets dated after tomorrow (`future_sets`: kept, reported by the caller)."""
    partial = f"{night}.partial"
    report: dict[str, Any] = {"cleaned": [], "expired": [], "server_hash": False, "future_sets": []}
    names = [p.split("/")[-1] for p in store.listing()]
    report["future_sets"] = future_sets(names, today)
    stale = stale_folders(names)
    restore = orphaned_superseded(names)
    report["cleaned"] = stale
    every = [*data_files, "MANIFEST.json", "SHA256SUMS"]
    folders = sorted({str(Path(partial, f).parent) for f in every})

    def puts(files: Sequence[str]) -> list[str]:
        return [f"put {lftp_quote(str(staging / f))} -o {lftp_quote(f'{partial}/{f}')}" for f in files]

    listing = [
        "echo @@list",
        f"cls -1 --size --block-size=1 {' '.join(lftp_quote(f + '/') for f in folders)}",
    ]
    commands = [f"rm -r -f {lftp_quote(n)}" for n in stale]
    commands += [f"mv {lftp_quote(n)} {lftp_quote(n.removesuffix('.superseded'))}" for n in restore]
    commands += [f"mkdir -p {lftp_quote(f)}" for f in folders]
    commands += puts(every) + listing
    commands += Store.hash_commands([f"{partial}/{f}" for f in data_files])
    output = store.run(commands)

    def wrong_sizes(output: str) -> list[str]:
        remote = Store.parse_listing(section(output, "list"))
        return [f for f in every if remote.get(f"{partial}/{f}") != (staging / f).stat().st_size]

    wrong = wrong_sizes(output)
    if wrong:
        # One more upload of what came out wrong: a truncated transfer is usually a one-off.
        output = store.run(
            puts(wrong) + listing + Store.hash_commands([f"{partial}/{f}" for f in data_files])
        )
        still = wrong_sizes(output)
        if still:
            raise BackupError(
                "verify_mismatch", f"{', '.join(still)}: size on the store differs from the upload"
            )
    hashes = Store.parse_hashes(output, [f"{partial}/{f}" for f in data_files])
    for f in data_files:
        got = hashes.get(f"{partial}/{f}")
        if got is not None:
            report["server_hash"] = True
            if got != expected[f]:
                raise BackupError("verify_mismatch", f"{f}: the server's SHA-256 differs")
    commands = []
    if night in names:  # a second run the same night replaces the set, never leaves none
        commands += [f"mv {lftp_quote(night)} {lftp_quote(night + '.superseded')}"]
    commands += [f"mv {lftp_quote(partial)} {lftp_quote(night)}"]
    if night in names:
        commands += [f"rm -r -f {lftp_quote(night + '.superseded')}"]
    # Retention only after a successful publish (fail-exit stops the session before it), judged
    # from the newest set that was there before tonight's: a guest clock that jumped forward
    # names tonight's set in the future, and must not age every set the store holds.
    expired: list[str] = []
    if retention_days is not None:
        before = [n for n in published_sets(names) if n != night and n not in report["future_sets"]]
        judged = today
        if before:
            newest = set_date(before[-1])
            assert newest is not None
            judged = min(today, newest + dt.timedelta(days=1))
        if judged != today:
            report["retention_judged_on"] = judged.isoformat()
        expired = select_expired({*names, night}, judged, retention_days, minimum_sets)
    commands += [f"rm -r -f {lftp_quote(n)}" for n in expired]
    commands += ["echo @@final", "cls -1 --size --block-size=1 ./"]
    output = store.run(commands)
    final = [p.split("/")[-1] for p in Store.parse_listing(section(output, "final"))]
    if night not in final:
        raise BackupError("upload_failed", f"{night} is not on the store after the rename")
    report["expired"] = expired
    return report


def publish_when_a_session_frees(
    retry: RetryConfig,
    deadline: dt.datetime | None,
    attempt: Callable[[], dict[str, Any]],
    wait: Callable[[float], None] = time.sleep,
) -> dict[str, Any]:
    """Publishes the built set; a store at its session limit (StoreBusy) is asked again after
    `retry.busy_wait_seconds`, at most `retry.busy_waits` times and never past the hard stop.
    The set is built already: a busy store on a crowded night costs a wait, not a new build and
    a failed attempt (issue 15: the planner's jittered nights lost guests that way)."""
    waits = retry.busy_waits
    while True:
        try:
            return attempt()
        except StoreBusy as err:
            delay = retry.busy_wait_seconds
            late = deadline is not None and (
                dt.datetime.now().astimezone() + dt.timedelta(seconds=delay) >= deadline
            )
            if waits <= 0 or late:
                raise
            waits -= 1
            print(
                f"vpsfleet-backup: the store is at its session limit ({err.message}); the set is"
                f" kept and offered again in {delay} s",
                file=sys.stderr,
                flush=True,
            )
            wait(delay)


def run(
    config: Config,
    now: dt.datetime | None = None,
    deadline: dt.datetime | None = None,
    use_deadline: bool = True,
    night: dt.date | None = None,
    extra: dict[str, Any] | None = None,
) -> Outcome:
    """One backup run; never raises for a failure of the run itself (see the outcome). `night`
    names the set (default: the start's date; a retry keeps its night's), `extra` goes into the
    status file (the night's attempts, night.py)."""
    started = now or dt.datetime.now().astimezone()
    night = night or started.date()
    if deadline is None and use_deadline and config.deadline:
        deadline = deadline_after(started, config.deadline)
    if not use_deadline:
        deadline = None
    previous = read_status(config.status_file)
    status: dict[str, Any] = {
        "state": "running",
        "reason": "running",
        "started": started.isoformat(timespec="seconds"),
        "deadline": deadline.isoformat(timespec="seconds") if deadline else None,
        "night": night.isoformat(),
        "last_success": previous.get("last_success"),
        "pid": os.getpid(),
        **(extra or {}),
    }
    with exclusive_lock(config.lock_file) as locked:
        if not locked:
            return Outcome("locked", f"another run holds {config.lock_file}")
        began = time.monotonic()
        record(config, status)
        outcome = Outcome("error", "not finished")
        sup = Supervisor(deadline)
        private: Path | None = None
        try:
            with signals_raise():
                # The set and the lftp scripts (with the password) are written there: a folder
                # someone else made first under the predictable name is refused.
                try:
                    ensure_private_folder(config.work_dir)
                except (UnsafePath, OSError) as err:
                    raise BackupError("config", f"work folder {config.work_dir}: {err}") from err
                private = Path(tempfile.mkdtemp(prefix="run.", dir=config.work_dir))
                staging, logs = private / "set", private / "logs"
                staging.mkdir()
                logs.mkdir()
                tools = Tools.find(config)
                entries, warnings = produce(config, tools, sup, staging, logs)
                sums = {e["path"]: e["sha256"] for e in entries}
                manifest = build_manifest(
                    config,
                    night,
                    started,
                    dt.datetime.now().astimezone(),
                    entries,
                    tools.versions(),
                    warnings,
                )
                (staging / "MANIFEST.json").write_text(
                    json.dumps(manifest, indent=2) + "\n", encoding="utf-8"
                )
                sums["MANIFEST.json"] = sha256_file(staging / "MANIFEST.json")
                (staging / "SHA256SUMS").write_text(format_sha256sums(sums), encoding="utf-8")
                total = sum((staging / f).stat().st_size for f in (*sums, "SHA256SUMS"))
                status["bytes"] = total
                sup.check()
                store = Store(config.store, tools.lftp, sup, private)
                report = publish_when_a_session_frees(
                    config.retry,
                    deadline,
                    lambda: publish(
                        store,
                        staging,
                        night.isoformat(),
                        [e["path"] for e in entries],
                        sums,
                        config.retention_days,
                        night,
                        config.retention_minimum_sets,
                    ),
                )
                status.update(report)
                status["warnings"] = warnings
                outcome = Outcome("ok", f"published {night.isoformat()}", night.isoformat(), total, True)
                if report["future_sets"]:
                    # Published, but a clock ran ahead (this guest's, or the store's when it
                    # named a folder) or someone planted a set: alert, delete nothing.
                    outcome.reason = "future_sets"
                    outcome.message = (
                        f"published {night.isoformat()}, but the store holds sets dated after"
                        f" tomorrow: {', '.join(report['future_sets'])}; they are kept and never"
                        " taken for the newest set: check this guest's clock and remove or rename them"
                    )
        except BackupError as err:
            reason = "deadline" if sup.expired.is_set() else err.reason
            outcome = Outcome(reason, err.message)
        except Killed as err:
            outcome = Outcome("killed", f"stopped by {err}")
        except Exception as err:  # the metrics must say something even for a bug
            outcome = Outcome("error", f"{type(err).__name__}: {err}")
        finally:
            sup.close()
            if private is not None:
                shutil.rmtree(private, ignore_errors=True)
        duration = round(time.monotonic() - began, 3)
        finished = dt.datetime.now().astimezone()
        status.update(
            {
                "state": "ok" if outcome.reason == "ok" else "failed",
                "reason": outcome.reason,
                "message": outcome.message,
                "finished": finished.isoformat(timespec="seconds"),
                "duration_seconds": duration,
            }
        )
        status.pop("pid", None)
        if outcome.published:
            status["last_success"] = {
                "set": outcome.set_name,
                "finished": finished.isoformat(timespec="seconds"),
                "finished_ts": round(finished.timestamp(), 3),
                "bytes": outcome.bytes,
                "duration_seconds": duration,
            }
        record(config, status)
        return outcome
