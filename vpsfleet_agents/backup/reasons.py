"""Why a backup run ends: its reasons (each a label of the exit-reason metric), its exit codes, and
the error that carries a reason."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2
EXIT_LOCKED = 75


# Every reason a run can end with; each is a label of the exit-reason metric, so that an
# alert can say why without reading logs.
REASONS = (
    "ok",
    "locked",
    "config",
    "source_changed",
    "tar_failed",
    "compress_failed",
    "db_unavailable",
    "dump_failed",
    "dump_incomplete",
    # The store or the way to it: down, unreachable, or refusing the session for now (at its
    # session limit: "Too many sessions, try again later"; ftps.store_busy). Retried the same night.
    "store_unreachable",
    "auth_failed",
    "tls_failed",
    "quota",
    "upload_failed",
    "verify_mismatch",
    "future_sets",
    "deadline",
    "killed",
    "error",
)


class BackupError(Exception):
    """A run that cannot publish; `reason` is one of REASONS."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


class StoreBusy(BackupError):
    """The store refused the session at its session limit (ftps.store_busy): it will take one
    later, so a built set waits for it instead of being built again (run.py)."""

    def __init__(self, message: str) -> None:
        super().__init__("store_unreachable", message)
