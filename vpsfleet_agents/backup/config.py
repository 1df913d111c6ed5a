"""The agent's configuration (`/etc/vpsfleet-backup/config.json`, written by role `backup_agent`)."""

from __future__ import annotations

import dataclasses
import json
import re
from typing import Any

from vpsfleet_agents.backup.reasons import REASONS


@dataclasses.dataclass(frozen=True)
class StoreConfig:
    host: str
    user: str
    password_file: str
    ca_file: str
    port: int = 21
    directory: str = "."  # the guest's folder on the store; its home under `DefaultRoot ~`
    timeout_seconds: int = 30
    retries: int = 3
    reconnect_seconds: int = 5
    # TLS 1.3 uploads were truncated by two servers in our tests (vsftpd, pyftpdlib): the size
    # check catches it, but TLS 1.2 avoids the retry. Set to "" to let GnuTLS choose.
    tls_priority: str = "NORMAL:-VERS-TLS1.3"


# Failures worth another attempt the same night (M24): the store or the way to it, which the
# guest cannot fix and which often clears within minutes. A failure of the guest's own making
# (configuration, dump, tar, credentials, certificate) would fail again the same way.
RETRY_REASONS = ("store_unreachable", "upload_failed", "verify_mismatch", "quota")


@dataclasses.dataclass(frozen=True)
class RetryConfig:
    """A failed night retried by the agent itself inside the window (M24): a guest the provider
    cannot reach after hand-over must heal without it."""

    attempts: int = 1  # attempts a night, the first included
    backoff_seconds: int = 300  # wait before the second attempt; doubled after each failure
    backoff_max_seconds: int = 1800
    reasons: tuple[str, ...] = RETRY_REASONS
    # A store at its session limit (run.py): the built set waits for a session this often, this
    # long each time, before the attempt fails; never past the hard stop.
    busy_waits: int = 30
    busy_wait_seconds: int = 60


@dataclasses.dataclass(frozen=True)
class Config:
    customer: str
    guest: str
    store: StoreConfig
    paths: tuple[str, ...] = ("/data/www",)
    excludes: tuple[str, ...] = ()
    databases: str | tuple[str, ...] = "all"  # "all", "none" or a list of names
    mysql_defaults_file: str | None = None
    compression: str = "zstd"  # the fleet's default; an offer may keep gzip
    deadline: str | None = "02:55"
    # The window's start: a run started between it and the deadline is the night's run, which
    # retries; a run on request outside the window makes one attempt.
    window_start: str = "00:00"
    retry: RetryConfig = RetryConfig()
    retention_days: int | None = None  # None: the store's retention job decides alone
    # Retention never leaves fewer good sets than this (a clock that jumps forward), whatever
    # their dates; the fleet's policy gives it.
    retention_minimum_sets: int = 3
    work_dir: str = "/var/tmp/vpsfleet-backup"
    # Restores: side copies of files go below restore_dir/<set>/; what a restore in place replaces
    # is kept below replaced_dir/<YYYYmmddHHMM>/. Both root-only folders the role makes.
    restore_dir: str = "/var/lib/vpsfleet-backup/restore"
    replaced_dir: str = "/var/lib/vpsfleet-backup/replaced"
    status_file: str = "/var/lib/vpsfleet-backup/status.json"
    textfile: str | None = "/var/lib/prometheus/node-exporter/vpsfleet_backup.prom"
    lock_file: str = "/run/vpsfleet-backup.lock"
    tar_attempts: int = 2  # a busy site may change under tar: one more pass, then fail
    tools: dict[str, str] = dataclasses.field(default_factory=dict)


class ConfigError(Exception):
    pass


def _require(data: dict[str, Any], key: str, kind: type, where: str) -> Any:
    if key not in data:
        raise ConfigError(f"{where}{key}: missing")
    value = data[key]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise ConfigError(f"{where}{key}: expected {kind.__name__}, got {value!r}")
    return value


def parse_config(data: dict[str, Any]) -> Config:
    """The configuration from its JSON form; every problem is a ConfigError naming the key."""
    if not isinstance(data, dict):
        raise ConfigError("the configuration must be a JSON object")
    store_data = _require(data, "store", dict, "")
    store_fields = {f.name for f in dataclasses.fields(StoreConfig)}
    unknown = sorted(set(store_data) - store_fields)
    if unknown:
        raise ConfigError(f"store: unknown keys {', '.join(unknown)}")
    for key in ("host", "user", "password_file", "ca_file"):
        _require(store_data, key, str, "store.")
    store = StoreConfig(**store_data)
    fields = {f.name for f in dataclasses.fields(Config)}
    unknown = sorted(set(data) - fields)
    if unknown:
        raise ConfigError(f"unknown keys {', '.join(unknown)}")
    values = dict(data)
    values["store"] = store
    if "retry" in data:
        values["retry"] = parse_retry(_require(data, "retry", dict, ""))
    for key in ("customer", "guest"):
        name = _require(data, key, str, "")
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", name):
            raise ConfigError(f"{key}: {name!r} is not a safe folder name")
    for key in ("paths", "excludes"):
        if key in data:
            items = _require(data, key, list, "")
            if not all(isinstance(p, str) and p.startswith("/") for p in items):
                raise ConfigError(f"{key}: expected a list of absolute paths")
            values[key] = tuple(items)
    databases = data.get("databases", "all")
    if isinstance(databases, list):
        values["databases"] = tuple(str(d) for d in databases)
    elif databases not in ("all", "none"):
        raise ConfigError(f"databases: expected 'all', 'none' or a list, got {databases!r}")
    if data.get("compression", "zstd") not in ("gzip", "zstd"):
        raise ConfigError(f"compression: expected gzip or zstd, got {data['compression']!r}")
    deadline = data.get("deadline", "02:55")
    if deadline is not None and not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", str(deadline)):
        raise ConfigError(f"deadline: expected HH:MM, got {deadline!r}")
    if not re.fullmatch(r"([01][0-9]|2[0-3]):[0-5][0-9]", str(data.get("window_start", "00:00"))):
        raise ConfigError(f"window_start: expected HH:MM, got {data['window_start']!r}")
    for key, least, optional in (
        ("retention_days", 1, True),
        ("retention_minimum_sets", 1, False),
        ("tar_attempts", 1, False),
    ):
        if key in data and not (optional and data[key] is None):
            value = _require(data, key, int, "")
            if value < least:
                raise ConfigError(f"{key}: expected at least {least}, got {value}")
    for key in ("work_dir", "restore_dir", "replaced_dir", "status_file", "lock_file"):
        if key in data and not (isinstance(data[key], str) and data[key].startswith("/")):
            raise ConfigError(f"{key}: expected an absolute path, got {data[key]!r}")
    return Config(**values)


def parse_retry(data: dict[str, Any]) -> RetryConfig:
    unknown = sorted(set(data) - {f.name for f in dataclasses.fields(RetryConfig)})
    if unknown:
        raise ConfigError(f"retry: unknown keys {', '.join(unknown)}")
    values: dict[str, Any] = {}
    for key, least in (
        ("attempts", 1),
        ("backoff_seconds", 1),
        ("backoff_max_seconds", 1),
        ("busy_waits", 0),
        ("busy_wait_seconds", 1),
    ):
        if key in data:
            values[key] = _require(data, key, int, "retry.")
            if values[key] < least:
                raise ConfigError(f"retry.{key}: expected at least {least}, got {values[key]}")
    if "reasons" in data:
        reasons = _require(data, "reasons", list, "retry.")
        known = set(REASONS) - {"ok"}
        if not all(isinstance(r, str) and r in known for r in reasons):
            raise ConfigError(f"retry.reasons: expected reasons of a failed run, got {reasons!r}")
        values["reasons"] = tuple(reasons)
    return RetryConfig(**values)


def load_config(path: str) -> Config:
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except (OSError, ValueError) as err:
        raise ConfigError(f"{path}: {err}") from err
    return parse_config(data)
