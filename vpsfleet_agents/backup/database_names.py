"""Names of databases a restore makes, quoted for SQL and kept within MariaDB's 64 characters."""

from __future__ import annotations

import hashlib


def quote_identifier(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def quote_string(text: str) -> str:
    return "'" + text.replace("\\", "\\\\").replace("'", "\\'") + "'"


MAX_DATABASE_NAME = 64  # MariaDB's limit, in characters


def database_name_with(name: str, suffix: str) -> str:
    """`name` + `suffix`, shortened (with a hash of the full name) to MariaDB's 64 characters."""
    if len(name) + len(suffix) <= MAX_DATABASE_NAME:
        return name + suffix
    digest = hashlib.sha256(name.encode()).hexdigest()[:6]
    return name[: MAX_DATABASE_NAME - len(suffix) - 7] + "_" + digest + suffix


def side_database_name(name: str, set_name: str) -> str:
    return database_name_with(name, f"_restored_{set_name.replace('-', '')}")
