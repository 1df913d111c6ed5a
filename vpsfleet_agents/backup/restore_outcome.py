"""What a restore is asked for and how it ends: the request, the outcome (its reason and exit code,
what it restored, what a restore in place kept), the error that carries a reason."""

from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any

from vpsfleet_agents.backup.config import Config
from vpsfleet_agents.backup.reasons import EXIT_CONFIG, EXIT_FAILED, EXIT_LOCKED, EXIT_OK

EXIT_NOT_FOUND = 3  # no such set, or the set lacks a requested path or database
EXIT_REFUSED = 4  # the set failed its checks (SHA256SUMS, decompression, dump trailer, screening)
RESTORE_ROOT = Config.restore_dir  # side copies of files: <restore_dir>/<set>/

# Why a restore ended; every one but `ok` leaves what it had not applied untouched.
RESTORE_REASONS = (
    "ok",
    "locked",
    "config",
    "no_set",
    "not_in_set",
    "corrupt",
    "unsafe_dump",
    "unsafe_target",
    "store_unreachable",
    "auth_failed",
    "tls_failed",
    "download_failed",
    "db_unavailable",
    "apply_failed",
    "killed",
    "error",
)


@dataclasses.dataclass(frozen=True)
class RestoreRequest:
    """What to restore. `files`/`databases`: None = not wanted, () = all of them. Files go to
    `target` (default <restore_dir>/<set>/) or over the original paths with `in_place`;
    databases to `<name>_restored_<YYYYMMDD>` or, with `in_place`, into the live database (whose
    content is first kept as `<name>_before_restore_<YYYYmmddHHMM>`)."""

    set_name: str = "latest"
    files: tuple[str, ...] | None = ()
    databases: tuple[str, ...] | None = ()
    target: str | None = None
    in_place: bool = False
    mysql_defaults_file: str | None = None  # an account that may create and load databases
    restore_root: str | None = None  # None: the configuration's restore_dir
    now: dt.datetime | None = None  # the stamp of the safety copies (None: now)


@dataclasses.dataclass
class RestoreOutcome:
    reason: str
    message: str
    set_name: str | None = None
    files: dict[str, Any] | None = None
    databases: dict[str, str] = dataclasses.field(default_factory=dict)
    # What a restore in place replaced, kept: {"files": folder or None, "databases": {live: copy}}
    replaced: dict[str, Any] = dataclasses.field(default_factory=lambda: {"files": None, "databases": {}})

    @property
    def exit_code(self) -> int:
        return {
            "ok": EXIT_OK,
            "locked": EXIT_LOCKED,
            "config": EXIT_CONFIG,
            "unsafe_target": EXIT_CONFIG,
            "no_set": EXIT_NOT_FOUND,
            "not_in_set": EXIT_NOT_FOUND,
            "corrupt": EXIT_REFUSED,
            "unsafe_dump": EXIT_REFUSED,
        }.get(self.reason, EXIT_FAILED)

    def as_json(self) -> dict[str, Any]:
        return {
            "reason": self.reason,
            "message": self.message,
            "exit_code": self.exit_code,
            "set": self.set_name,
            "files": self.files,
            "databases": self.databases,
            "replaced": self.replaced,
        }


class RestoreError(Exception):
    def __init__(self, reason: str, message: str, replaced: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.replaced = replaced  # what a failed restore in place had already kept


def kept_text(replaced: dict[str, Any]) -> str:
    parts = []
    if replaced.get("files"):
        parts.append(f"replaced files in {replaced['files']}")
    parts += [f"database {d} as it was in {k}" for d, k in replaced.get("databases", {}).items()]
    return ", ".join(parts)
