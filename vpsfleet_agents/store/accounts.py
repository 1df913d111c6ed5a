"""ProFTPD's virtual users (AuthUserFile) as erasure changes them, and their password hashes."""

from __future__ import annotations

import os
import re
import stat
import subprocess

from vpsfleet_agents.atomic import write_atomic
from vpsfleet_agents.store.config import NAME, Refused

SALT = re.compile(r"[./0-9A-Za-z]{1,16}")


def passwd_users(passwd_file: str | None) -> set[str]:
    if not passwd_file or not os.path.exists(passwd_file):
        return set()
    with open(passwd_file, encoding="utf-8") as handle:
        return {line.split(":", 1)[0] for line in handle if ":" in line}


def remove_account(passwd_file: str | None, name: str) -> bool:
    """Removes `name` from ProFTPD's AuthUserFile (its mode and owner kept); True if it was
    there."""
    if not passwd_file or not os.path.exists(passwd_file):
        return False
    with open(passwd_file, encoding="utf-8") as handle:
        lines = handle.read().splitlines(keepends=True)
    kept = [line for line in lines if line.split(":", 1)[0] != name]
    if len(kept) == len(lines):
        return False
    info = os.stat(passwd_file)
    write_atomic(passwd_file, "".join(kept), stat.S_IMODE(info.st_mode))
    os.chown(passwd_file, info.st_uid, info.st_gid)
    return True


def hash_passwords(accounts: dict[str, dict[str, str]], openssl: str = "openssl") -> dict[str, str]:
    """sha512-crypt hashes for ProFTPD's AuthUserFile, with the salts given (stable salts keep
    the file unchanged from one run to the next). Passwords go through stdin, never argv."""
    hashes = {}
    for name, account in sorted(accounts.items()):
        if not NAME.fullmatch(name) or not SALT.fullmatch(account["salt"]) or "\n" in account["password"]:
            raise Refused(f"account {name!r}: a name, a crypt salt and a one-line password are expected")
        run = subprocess.run(
            [openssl, "passwd", "-6", "-salt", account["salt"], "-stdin"],
            input=account["password"].encode() + b"\n",
            capture_output=True,
            check=True,
        )
        hashes[name] = run.stdout.decode().strip()
    return hashes
